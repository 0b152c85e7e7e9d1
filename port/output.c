/* output.c: the {packet, 4} writer (output.h): frames batched into one
 * write(2) per burst, large ones written as they are, the pre-frame hook. */
#include "output.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct pyx_out {
    pthread_mutex_t mu;
    int fd;
    int err;          /* under mu */
    int pending;      /* atomic: senders in pyx_out_send */
    unsigned char *buf;
    size_t len, cap;  /* under mu */
    pyx_out_hook hook; /* atomic: run before each frame, or NULL */
    void *ext[PYX_OUT_EXTS]; /* atomic: see pyx_out_ext */
    /* erlang.send's batch, under mu (pyx_out_send_oneway) */
    unsigned char *sends;
    size_t sends_len, sends_cap;
    unsigned nsends;       /* entries in sends */
    long long sends_out;   /* batches sent, not acknowledged */
    int send_waiters;      /* senders waiting on send_cv */
    int urgent;            /* atomic: threads waiting for mu to write a frame
                              (a reply, an ack), whom sends let go first */
    pthread_cond_t send_cv;
};

pyx_out *pyx_out_new(int fd, size_t cap)
{
    pyx_out *o = calloc(1, sizeof *o);
    if (o == NULL || (o->buf = malloc(cap)) == NULL) {
        free(o);
        return NULL;
    }
    o->fd = fd;
    o->cap = cap;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->send_cv, NULL);
    return o;
}

void pyx_out_free(pyx_out *o)
{
    if (o == NULL)
        return;
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->send_cv);
    free(o->sends);
    for (int i = 0; i < PYX_OUT_EXTS; i++)
        free(o->ext[i]);
    free(o->buf);
    free(o);
}

int pyx_out_error(pyx_out *o)
{
    pthread_mutex_lock(&o->mu);
    int err = o->err;
    pthread_mutex_unlock(&o->mu);
    return err;
}

/* Writes all of iov, under mu. The fd may be non-blocking: then it waits
 * for room with poll. */
static void write_all(pyx_out *o, struct iovec *iov, int n)
{
    while (n > 0 && o->err == 0) {
        ssize_t w = writev(o->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = o->fd, .events = POLLOUT};
                (void)poll(&p, 1, -1);
                continue;
            }
            o->err = errno;
            return;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static void flush(pyx_out *o)
{
    struct iovec iov = {o->buf, o->len};
    if (o->len > 0)
        write_all(o, &iov, 1);
    o->len = 0;
}

/* Adds one frame (a then b) to the buffer, or writes it at once when it
 * is large. Under mu. */
static void put_frame(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen + blen;
    unsigned char hdr[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                            (unsigned char)n};
    if (o->len + 4 + n > o->cap)
        flush(o);
    if (4 + n > o->cap) { /* a large frame goes out as it is, not copied */
        struct iovec iov[3] = {{hdr, 4}, {(void *)a, alen}, {(void *)b, blen}};
        write_all(o, iov, 3);
    } else {
        memcpy(o->buf + o->len, hdr, 4);
        if (alen > 0)
            memcpy(o->buf + o->len + 4, a, alen);
        if (blen > 0)
            memcpy(o->buf + o->len + 4 + alen, b, blen);
        o->len += 4 + n;
    }
}

/* Runs the hook, if any, under mu: it may put frames first. */
static void run_hook(pyx_out *o)
{
    pyx_out_hook h = __atomic_load_n(&o->hook, __ATOMIC_ACQUIRE);
    if (h != NULL)
        h(o);
}

void pyx_out_put(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen)
{
    put_frame(o, a, alen, b, blen);
}

/* The batch of sends as one frame '$send' + [Entry], if it holds any.
 * Under mu. */
static void put_sends(pyx_out *o)
{
    if (o->nsends == 0)
        return;
    /* version, '$send' (SMALL_ATOM_UTF8), version, LIST_EXT with a count */
    unsigned char head[14] = {131, 119, 5, '$', 's', 'e', 'n', 'd', 131, 108,
                              (unsigned char)(o->nsends >> 24), (unsigned char)(o->nsends >> 16),
                              (unsigned char)(o->nsends >> 8), (unsigned char)o->nsends};
    o->sends[o->sends_len] = 106; /* NIL_EXT: room kept for it */
    put_frame(o, head, sizeof head, o->sends, o->sends_len + 1);
    o->sends_len = 0;
    o->nsends = 0;
    o->sends_out++;
}

/* Takes mu for a frame that must not wait behind a loop of sends: glibc's
 * mutexes are not fair, and a thread that sends in a loop takes mu again
 * before a woken waiter runs, so that a reply could wait for hundreds of
 * microseconds; sends let urgent lockers go first (lock_send). */
static void lock_urgent(pyx_out *o)
{
    __atomic_add_fetch(&o->urgent, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&o->mu);
    __atomic_sub_fetch(&o->urgent, 1, __ATOMIC_ACQ_REL);
}

static void lock_send(pyx_out *o)
{
    for (int i = 0; i < 1000 && __atomic_load_n(&o->urgent, __ATOMIC_ACQUIRE) > 0; i++)
        sched_yield();
    pthread_mutex_lock(&o->mu);
}

void pyx_out_send(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen)
{
    __atomic_add_fetch(&o->pending, 1, __ATOMIC_ACQ_REL);
    lock_urgent(o);
    run_hook(o); /* e.g. no reply overtakes the mirror of what it saw */
    put_sends(o); /* nor the sends made before it, credit or not */
    put_frame(o, a, alen, b, blen);
    if (__atomic_sub_fetch(&o->pending, 1, __ATOMIC_ACQ_REL) == 0)
        flush(o);
    pthread_mutex_unlock(&o->mu);
}

void pyx_out_kick(pyx_out *o)
{
    pthread_mutex_lock(&o->mu);
    run_hook(o);
    if (__atomic_load_n(&o->pending, __ATOMIC_ACQUIRE) == 0)
        flush(o); /* else the last sender waiting for mu flushes */
    pthread_mutex_unlock(&o->mu);
}

void pyx_out_set_hook(pyx_out *o, pyx_out_hook hook) { __atomic_store_n(&o->hook, hook, __ATOMIC_RELEASE); }

void **pyx_out_ext(pyx_out *o, int which) { return &o->ext[which]; }

/* Appends entry to the batch, keeping a byte for the list's tail. 0, or
 * -1 out of memory. Under mu. */
static int add_send(pyx_out *o, const void *entry, size_t len)
{
    if (o->sends_len + len + 1 > o->sends_cap) {
        size_t cap = o->sends_cap ? o->sends_cap : 4096;
        while (cap < o->sends_len + len + 1)
            cap *= 2;
        unsigned char *p = realloc(o->sends, cap);
        if (p == NULL)
            return -1;
        o->sends = p;
        o->sends_cap = cap;
    }
    memcpy(o->sends + o->sends_len, entry, len);
    o->sends_len += len;
    o->nsends++;
    return 0;
}

/* Sends the batch if a credit allows, and writes what is buffered unless
 * another sender will. Under mu, o->pending counted by the caller. */
static void sends_out(pyx_out *o)
{
    if (o->nsends > 0 && o->sends_out < PYX_SEND_WINDOW) {
        run_hook(o); /* a send made after a mutation does not overtake its op */
        put_sends(o);
    }
}

int pyx_out_send_oneway(pyx_out *o, const void *entry, size_t len, int (*stop)(void))
{
    int rc = 0;
    lock_send(o);
    /* not counted in o->pending while it waits: others flush meanwhile */
    while (o->nsends >= PYX_SEND_BATCH && o->sends_out >= PYX_SEND_WINDOW) {
        if (stop != NULL && stop()) {
            rc = -1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        o->send_waiters++;
        (void)pthread_cond_timedwait(&o->send_cv, &o->mu, &ts);
        o->send_waiters--;
    }
    __atomic_add_fetch(&o->pending, 1, __ATOMIC_ACQ_REL);
    if (rc == 0) {
        if (add_send(o, entry, len) < 0) {
            run_hook(o); /* out of memory: the batch goes now, then this one alone */
            put_sends(o);
            if (add_send(o, entry, len) < 0)
                rc = -2;
        }
        sends_out(o);
    }
    if (__atomic_sub_fetch(&o->pending, 1, __ATOMIC_ACQ_REL) == 0)
        flush(o);
    pthread_mutex_unlock(&o->mu);
    return rc == -2 ? 0 : rc; /* a send lost for memory is as a dead receiver's */
}

void pyx_out_send_ack(pyx_out *o, long long n)
{
    __atomic_add_fetch(&o->pending, 1, __ATOMIC_ACQ_REL);
    lock_urgent(o);
    o->sends_out = n >= o->sends_out ? 0 : o->sends_out - n;
    sends_out(o);
    if (o->send_waiters > 0)
        pthread_cond_broadcast(&o->send_cv);
    if (__atomic_sub_fetch(&o->pending, 1, __ATOMIC_ACQ_REL) == 0)
        flush(o);
    pthread_mutex_unlock(&o->mu);
}
