/* log.c: the '$log' packet {Dropped, [{Level, Ctx, Caller, Text}]}, its
 * batching and its credit (log.h). */
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "etfw.h"

static const char *const level_names[8] = {"emergency", "alert", "critical", "error",
                                           "warning",   "notice", "info",    "debug"};

typedef struct {
    pthread_mutex_t mu;
    pyx_buf pending;           /* entries, each a term without version */
    uint32_t count;            /* entries in pending */
    long long in_flight;       /* packets sent, not acknowledged */
    /* Atomic, read and written also without mu: while full, a line is
     * dropped and counted without taking mu, so that a thread printing in
     * a loop does not hold mu against the reader thread's acks (glibc's
     * mutexes are not fair: a waiter may wait for many of its turns). */
    int full;                     /* pending is over its bound */
    unsigned long long dropped[8]; /* lines dropped since the last packet, by level */
    unsigned long long dropped_total;
} logq;

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

/* o's log state, made on first use. NULL out of memory. */
static logq *ext(pyx_out *o)
{
    void **slot = pyx_out_ext(o, PYX_OUT_EXT_LOG);
    logq *q = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (q != NULL)
        return q;
    pthread_mutex_lock(&init_mu);
    q = *slot;
    if (q == NULL) {
        q = calloc(1, sizeof *q);
        if (q != NULL)
            pthread_mutex_init(&q->mu, NULL);
        __atomic_store_n(slot, q, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
    return q;
}

/* A level's severity, 0 (emergency) to 7 (debug); 7 for a name not known. */
static int severity(const char *level)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(level, level_names[i]) == 0)
            return i;
    return 7;
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

/* Whether lines were dropped since the last packet. */
static int any_dropped(logq *q)
{
    for (int i = 0; i < 8; i++)
        if (__atomic_load_n(&q->dropped[i], __ATOMIC_ACQUIRE) != 0)
            return 1;
    return 0;
}

/* Sends what q holds, the counts of lines dropped ([{Level, N}], the
 * levels with some) and the entries, as one packet. Under q->mu. */
static void send_pending(pyx_out *o, logq *q)
{
    if (q->count == 0 && !any_dropped(q))
        return;
    unsigned char hb[256];
    pyx_buf head = {hb, 0, sizeof hb}; /* never grows: 170 bytes at most */
    (void)(pyx_etf_version(&head) < 0 || pyx_etf_atom(&head, "$log") < 0 || pyx_etf_version(&head) < 0 ||
           pyx_etf_tuple(&head, 2) < 0);
    unsigned long long d[8];
    uint32_t levels = 0;
    for (int i = 0; i < 8; i++) /* lines dropped from here on go with the next packet */
        if ((d[i] = __atomic_exchange_n(&q->dropped[i], 0, __ATOMIC_ACQ_REL)) != 0)
            levels++;
    if (levels > 0) {
        (void)pyx_etf_list(&head, levels);
        for (int i = 0; i < 8; i++)
            if (d[i] != 0)
                (void)(pyx_etf_tuple(&head, 2) < 0 || pyx_etf_atom(&head, level_names[i]) < 0 ||
                       pyx_etf_int(&head, (long long)d[i]) < 0);
    }
    (void)pyx_etf_nil(&head);
    if (q->count == 0) {
        (void)pyx_etf_nil(&head);
        pyx_out_send(o, head.data, head.len, NULL, 0);
    } else {
        (void)pyx_etf_list(&head, q->count);
        if (pyx_etf_nil(&q->pending) < 0) { /* out of memory: this batch is lost */
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

static void drop(logq *q, const char *level, const char *text, size_t n)
{
    unsigned long long k = lines(text, n);
    __atomic_add_fetch(&q->dropped[severity(level)], k, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&q->dropped_total, k, __ATOMIC_RELAXED);
}

int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *caller, size_t clen, const void *text,
                size_t n)
{
    logq *q = ext(o);
    if (q == NULL)
        return -1;
    if (__atomic_load_n(&q->full, __ATOMIC_ACQUIRE)) { /* the fast way to drop */
        drop(q, level, text, n);
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->pending.len > 0 && q->pending.len + n + clen > PYX_LOG_BATCH) {
        drop(q, level, text, n);
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

void pyx_out_log_ack(pyx_out *o, long long n)
{
    logq *q = ext(o);
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    q->in_flight = n >= q->in_flight ? 0 : q->in_flight - n;
    if (q->in_flight < PYX_LOG_WINDOW)
        send_pending(o, q);
    pthread_mutex_unlock(&q->mu);
}

unsigned long long pyx_out_log_dropped(pyx_out *o)
{
    logq *q = ext(o);
    if (q == NULL)
        return 0;
    return __atomic_load_n(&q->dropped_total, __ATOMIC_ACQUIRE);
}
