/* log.c: the '$log' packet {Dropped, [{Level, Ctx, Caller, Text}]}, its
 * batching and its credit; erlang.send's credit (log.h). */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etfw.h"

typedef struct {
    pthread_mutex_t mu;
    pyx_buf pending;           /* entries, each a term without version */
    uint32_t count;            /* entries in pending */
    long long in_flight;       /* packets sent, not acknowledged */
    /* Atomic, read and written also without mu: while full, a line is
     * dropped and counted without taking mu, so that a thread printing in
     * a loop does not hold mu against the reader thread's acks (glibc's
     * mutexes are not fair: a waiter may wait for many of its turns). */
    int full;                  /* pending is over its bound */
    int level;                 /* the most verbose level that passes, +1 (0: all) */
    unsigned long long dropped; /* lines dropped since the last packet */
    unsigned long long dropped_total;
} logq;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long long in_flight; /* atomic: '$send' packets not acknowledged */
    int waiters;         /* atomic: threads in the slow path of a credit */
} sendq;

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

/* o's state in slot which, made on first use. NULL out of memory. */
static void *ext(pyx_out *o, int which)
{
    void **slot = pyx_out_ext(o, which);
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (p != NULL)
        return p;
    pthread_mutex_lock(&init_mu);
    p = *slot;
    if (p == NULL) {
        if (which == PYX_OUT_EXT_LOG) {
            logq *q = calloc(1, sizeof *q);
            if (q != NULL)
                pthread_mutex_init(&q->mu, NULL);
            p = q;
        } else {
            sendq *q = calloc(1, sizeof *q);
            if (q != NULL) {
                pthread_mutex_init(&q->mu, NULL);
                pthread_cond_init(&q->cv, NULL);
            }
            p = q;
        }
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
    return p;
}

/* Appends the entry {Level, Ctx, Caller, Text}. */
static int put_entry(pyx_buf *b, const char *level, long long ctx, const void *caller, size_t clen,
                     const void *text, size_t n)
{
    if (pyx_buf_reserve(b, n + clen + 48) < 0 || pyx_etf_tuple(b, 4) < 0 || pyx_etf_atom(b, level) < 0)
        return -1;
    int rc = ctx > 0 ? pyx_etf_int(b, ctx) : pyx_etf_atom(b, ctx == PYX_LOG_SIDECAR ? "sidecar" : "undefined");
    if (rc < 0)
        return -1;
    rc = caller != NULL && clen > 0 ? pyx_buf_append(b, caller, clen) : pyx_etf_atom(b, "undefined");
    return rc < 0 || pyx_etf_binary(b, text, n) < 0 ? -1 : 0;
}

/* Sends what q holds, the count of lines dropped and the entries, as one
 * packet. Under q->mu. */
static void send_pending(pyx_out *o, logq *q)
{
    if (q->count == 0 && __atomic_load_n(&q->dropped, __ATOMIC_ACQUIRE) == 0)
        return;
    /* lines dropped from here on go with the next packet */
    unsigned long long dropped = __atomic_exchange_n(&q->dropped, 0, __ATOMIC_ACQ_REL);
    unsigned char hb[64];
    pyx_buf head = {hb, 0, sizeof hb}; /* never grows: 20 bytes at most */
    (void)(pyx_etf_version(&head) < 0 || pyx_etf_atom(&head, "$log") < 0 || pyx_etf_version(&head) < 0 ||
           pyx_etf_tuple(&head, 2) < 0 || pyx_etf_int(&head, (long long)dropped) < 0);
    if (q->count == 0) {
        (void)pyx_etf_nil(&head);
        pyx_out_send(o, head.data, head.len, NULL, 0);
    } else {
        (void)pyx_etf_list(&head, q->count);
        if (pyx_etf_nil(&q->pending) < 0) { /* out of memory: this batch is lost */
            __atomic_add_fetch(&q->dropped, dropped + q->count, __ATOMIC_ACQ_REL);
            q->pending.len = 0;
            q->count = 0;
            __atomic_store_n(&q->full, 0, __ATOMIC_RELEASE);
            return;
        }
        pyx_out_send(o, head.data, head.len, q->pending.data, q->pending.len);
    }
    if (q->pending.cap > 4 * PYX_LOG_BATCH) /* an oversized entry went */
        pyx_buf_free(&q->pending);
    q->pending.len = 0;
    q->count = 0;
    q->in_flight++;
    __atomic_store_n(&q->full, 0, __ATOMIC_RELEASE);
}

/* The lines of text[0..n): its newlines, plus one for a last line without. */
static unsigned long long lines(const char *text, size_t n)
{
    unsigned long long k = 0;
    const char *end = text + n;
    for (const char *p = text; p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return k + 1;
        p = nl + 1;
    }
    return k > 0 ? k : 1;
}

/* A level's severity, 0 (emergency) to 7 (debug); 7 for a name not known. */
static int severity(const char *level)
{
    static const char *const names[] = {"emergency", "alert", "critical", "error",
                                        "warning",   "notice", "info",    "debug"};
    for (int i = 0; i < 8; i++)
        if (strcmp(level, names[i]) == 0)
            return i;
    return 7;
}

int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *caller, size_t clen, const void *text,
                size_t n)
{
    logq *q = ext(o, PYX_OUT_EXT_LOG);
    if (q == NULL)
        return -1;
    int pass = __atomic_load_n(&q->level, __ATOMIC_ACQUIRE); /* 0: all */
    if (pass != 0 && severity(level) > pass - 1)
        return 0; /* the logger would discard it: not sent, not dropped */
    if (__atomic_load_n(&q->full, __ATOMIC_ACQUIRE)) { /* the fast way to drop */
        unsigned long long k = lines(text, n);
        __atomic_add_fetch(&q->dropped, k, __ATOMIC_ACQ_REL);
        __atomic_add_fetch(&q->dropped_total, k, __ATOMIC_RELAXED);
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->pending.len > 0 && q->pending.len + n + clen > PYX_LOG_BATCH) {
        unsigned long long k = lines(text, n);
        __atomic_add_fetch(&q->dropped, k, __ATOMIC_ACQ_REL);
        __atomic_add_fetch(&q->dropped_total, k, __ATOMIC_RELAXED);
        if (q->in_flight >= PYX_LOG_WINDOW)
            __atomic_store_n(&q->full, 1, __ATOMIC_RELEASE); /* until the next packet */
    } else {
        size_t start = q->pending.len;
        if (put_entry(&q->pending, level, ctx, caller, clen, text, n) < 0) {
            q->pending.len = start;
            rc = -1;
        } else {
            q->count++;
        }
    }
    if (q->in_flight < PYX_LOG_WINDOW)
        send_pending(o, q);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void pyx_out_log_ack(pyx_out *o, long long n, int level)
{
    logq *q = ext(o, PYX_OUT_EXT_LOG);
    if (q == NULL)
        return;
    if (level >= -1 && level <= 7)
        __atomic_store_n(&q->level, level + 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&q->mu);
    q->in_flight = n >= q->in_flight ? 0 : q->in_flight - n;
    if (q->in_flight < PYX_LOG_WINDOW)
        send_pending(o, q);
    pthread_mutex_unlock(&q->mu);
}

unsigned long long pyx_out_log_dropped(pyx_out *o)
{
    logq *q = ext(o, PYX_OUT_EXT_LOG);
    if (q == NULL)
        return 0;
    return __atomic_load_n(&q->dropped_total, __ATOMIC_ACQUIRE);
}

int pyx_out_send_credit(pyx_out *o, int (*stop)(void))
{
    sendq *q = ext(o, PYX_OUT_EXT_SEND);
    if (q == NULL)
        return 0; /* out of memory: no flow control rather than no send */
    /* The common way: a credit taken with no lock, so a thread sending in
     * a loop does not hold a mutex against the reader thread's acks. */
    long long n = __atomic_load_n(&q->in_flight, __ATOMIC_ACQUIRE);
    while (n < PYX_SEND_WINDOW)
        if (__atomic_compare_exchange_n(&q->in_flight, &n, n + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
    pthread_mutex_lock(&q->mu);
    __atomic_add_fetch(&q->waiters, 1, __ATOMIC_ACQ_REL);
    int rc = 0;
    for (;;) {
        n = __atomic_load_n(&q->in_flight, __ATOMIC_ACQUIRE);
        if (n < PYX_SEND_WINDOW) {
            if (__atomic_compare_exchange_n(&q->in_flight, &n, n + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                break;
            continue;
        }
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
        (void)pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    __atomic_sub_fetch(&q->waiters, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void pyx_out_send_ack(pyx_out *o, long long n)
{
    sendq *q = ext(o, PYX_OUT_EXT_SEND);
    if (q == NULL)
        return;
    long long cur = __atomic_load_n(&q->in_flight, __ATOMIC_ACQUIRE);
    while (!__atomic_compare_exchange_n(&q->in_flight, &cur, n >= cur ? 0 : cur - n, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
        ;
    if (__atomic_load_n(&q->waiters, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&q->mu); /* a waiter between its check and its wait sees the credit */
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
}
