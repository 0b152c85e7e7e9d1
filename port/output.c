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
    /* the share of sends while others are served (pace), under mu */
    long long framed_ns;   /* CLOCK_MONOTONIC of the last pyx_out_send, or 0 */
    const void *framed_by; /* its thread (&this_thread) */
    long long pace_every;  /* the pace: pace_max sends each pace_every ns, */
    unsigned pace_max;     /* or none when pace_every is 0 */
    long long pace_start;  /* the current interval */
    unsigned pace_n;       /* sends in it */
    unsigned long long paced; /* sends whose sender waited */
};

/* A thread's identity: the address of its copy. */
static __thread char this_thread;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

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
    pyx_out_set_send_pace(o, PYX_SEND_PACE_DEFAULT);
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
    o->framed_ns = now_ns();
    o->framed_by = &this_thread;
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

/* One wait on send_cv of at most ns (an ack or a broadcast ends it
 * sooner). Under mu, which it releases meanwhile. */
static void wait_send_cv(pyx_out *o, long long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* send_cv's clock */
    ts.tv_sec += (time_t)((ts.tv_nsec + ns) / 1000000000LL);
    ts.tv_nsec = (long)((ts.tv_nsec + ns) % 1000000000LL);
    o->send_waiters++;
    (void)pthread_cond_timedwait(&o->send_cv, &o->mu, &ts);
    o->send_waiters--;
}

/* Waits until deadline (CLOCK_MONOTONIC), 5 ms at a time, asking stop()
 * (may be NULL) whether to give up: 0, or -1 when it said so. Under mu. */
static int wait_until(pyx_out *o, long long deadline, int (*stop)(void))
{
    for (long long now = now_ns(); now < deadline; now = now_ns()) {
        if (stop != NULL && stop())
            return -1;
        wait_send_cv(o, deadline - now < 5000000 ? deadline - now : 5000000);
    }
    return 0;
}

void pyx_out_set_send_pace(pyx_out *o, long long per_second)
{
    long long every = 0, max = 0;
    if (per_second > 1000000000LL)
        per_second = 1000000000LL; /* a billion a second: no pace in effect */
    if (per_second > 0) {
        max = per_second * PYX_SEND_PACE_NS / 1000000000LL;
        every = max >= 1 ? PYX_SEND_PACE_NS : 1000000000LL / per_second;
        if (max < 1)
            max = 1;
    }
    pthread_mutex_lock(&o->mu);
    o->pace_every = every;
    o->pace_max = (unsigned)max;
    o->pace_n = 0;
    pthread_mutex_unlock(&o->mu);
}

unsigned long long pyx_out_send_paced(pyx_out *o)
{
    pthread_mutex_lock(&o->mu);
    unsigned long long n = o->paced;
    pthread_mutex_unlock(&o->mu);
    return n;
}

/* The pace (output.h) for a send just made: the end of its interval, when
 * its sender must wait for it, else 0. Under mu. */
static long long pace(pyx_out *o)
{
    if (o->pace_every == 0 || o->framed_ns == 0 || o->framed_by == &this_thread)
        return 0; /* nobody else served yet, or the last frame was its own */
    long long now = now_ns();
    if (now - o->framed_ns >= PYX_SEND_SHARE_NS)
        return 0;
    if (now - o->pace_start >= o->pace_every) {
        o->pace_start = now;
        o->pace_n = 0;
    }
    if (++o->pace_n < o->pace_max)
        return 0;
    o->paced++;
    return o->pace_start + o->pace_every;
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
        wait_send_cv(o, 5000000);
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
    long long until = rc == 0 ? pace(o) : 0;
    if (until > 0) /* the send is out (or waits for a credit): only its sender waits */
        rc = wait_until(o, until, stop);
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
