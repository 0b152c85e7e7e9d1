/* output.c: see output.h. */
#include "output.h"
#include "state.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
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
    int mirror;       /* atomic: the state mirror goes out here */
    unsigned char *mdata; /* under mu: the mirror packet being sent */
    size_t mlen, mcap;
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
    return o;
}

void pyx_out_free(pyx_out *o)
{
    if (o == NULL)
        return;
    pthread_mutex_destroy(&o->mu);
    free(o->mdata);
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

/* Puts the pending mirror packet, if any, before whatever comes next.
 * Under mu (lock order: mu -> the mirror's mutex, in take). */
static void put_mirror(pyx_out *o)
{
    if (!__atomic_load_n(&o->mirror, __ATOMIC_RELAXED) || pyx_state_mirror_pending() == 0)
        return;
    o->mlen = 0;
    if (pyx_state_mirror_take(&o->mdata, &o->mlen, &o->mcap))
        put_frame(o, o->mdata, o->mlen, NULL, 0);
    if (o->mcap > (1u << 20)) { /* do not keep a large one */
        free(o->mdata);
        o->mdata = NULL;
        o->mcap = 0;
    }
}

void pyx_out_send(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen)
{
    __atomic_add_fetch(&o->pending, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&o->mu);
    put_mirror(o); /* no reply overtakes the mirror of what it saw */
    put_frame(o, a, alen, b, blen);
    if (__atomic_sub_fetch(&o->pending, 1, __ATOMIC_ACQ_REL) == 0)
        flush(o);
    pthread_mutex_unlock(&o->mu);
}

/* ------------------------------------------------------------------ */
/* The mirror's own flushes: when its buffer passes MIRROR_FULL, and a
 * timer thread that sends what nothing else did within MIRROR_DELAY_NS.
 * The thread sleeps on a condition variable while idle; a mutation wakes
 * it only when it is not armed already, so at most once per delay. */

#define MIRROR_FULL (64u << 10)
#define MIRROR_DELAY_NS 5000000L

static pyx_out *mirror_out;  /* atomic: where the mirror goes, or NULL */
static int timer_armed;      /* atomic */
static pthread_mutex_t timer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_cv = PTHREAD_COND_INITIALIZER;
static int timer_kicked;     /* under timer_mu */
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

void pyx_out_mirror_flush(pyx_out *o)
{
    pthread_mutex_lock(&o->mu);
    put_mirror(o);
    if (__atomic_load_n(&o->pending, __ATOMIC_ACQUIRE) == 0)
        flush(o); /* else the last sender waiting for mu flushes */
    pthread_mutex_unlock(&o->mu);
}

static void *timer_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&timer_mu);
        while (!timer_kicked)
            pthread_cond_wait(&timer_cv, &timer_mu);
        timer_kicked = 0;
        pthread_mutex_unlock(&timer_mu);
        struct timespec d = {0, MIRROR_DELAY_NS};
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
            ;
        /* disarm first: an op after this kicks again, one before is sent */
        __atomic_store_n(&timer_armed, 0, __ATOMIC_SEQ_CST);
        pyx_out *o = __atomic_load_n(&mirror_out, __ATOMIC_ACQUIRE);
        if (o != NULL)
            pyx_out_mirror_flush(o);
    }
    return NULL;
}

static void timer_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    (void)pthread_create(&t, &attr, timer_main, NULL); /* without it: no timed flush */
    pthread_attr_destroy(&attr);
}

void pyx_out_mirror_poke(size_t buffered)
{
    pyx_out *o = __atomic_load_n(&mirror_out, __ATOMIC_ACQUIRE);
    if (o == NULL)
        return;
    if (buffered > MIRROR_FULL) {
        pyx_out_mirror_flush(o);
        return;
    }
    if (__atomic_load_n(&timer_armed, __ATOMIC_RELAXED) || __atomic_exchange_n(&timer_armed, 1, __ATOMIC_SEQ_CST))
        return;
    pthread_mutex_lock(&timer_mu);
    timer_kicked = 1;
    pthread_cond_signal(&timer_cv);
    pthread_mutex_unlock(&timer_mu);
}

void pyx_out_mirror(pyx_out *o, int on)
{
    pthread_once(&timer_once, timer_start);
    pyx_out *old = __atomic_exchange_n(&mirror_out, on ? o : NULL, __ATOMIC_ACQ_REL);
    if (old != NULL && old != o)
        __atomic_store_n(&old->mirror, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&o->mirror, on, __ATOMIC_RELAXED);
    pyx_state_mirror_enable(on);
}
