/* queue.h: an executor's bounded queue of jobs. The executor thread waits
 * on it in C (exec.c), so waking it costs one futex wake and not a Go
 * scheduler hand-off to a locked thread (PLATFORM.md: 18-40 us). No GIL
 * involved; nothing here calls into Go. */
#ifndef PYX_QUEUE_H
#define PYX_QUEUE_H
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "interp.h"
#include "output.h"

/* Job kinds: a request from the BEAM; a Go func(); the BEAM's answer to an
 * erlang.call made on this executor (seq: the callback's number). */
enum { PYX_JOB_REQUEST = 0, PYX_JOB_GO = 1, PYX_JOB_CB_REPLY = 2 };

/* One job, malloc'd in one piece with its bytes; the executor frees it. */
typedef struct {
    int kind;       /* PYX_JOB_REQUEST or PYX_JOB_GO */
    int op;         /* PYX_CALL, PYX_EVAL or PYX_EXEC */
    int in_file;    /* the payload is in a file: data holds its path, with a NUL */
    int cancelled;  /* atomic: set by pyx_queue_cancel */
    long long cancel_ns; /* under the queue's mu: when pyx_queue_cancel found
                            it running (pyx_now_ns), for the stuck watchdog */
    long long seq;  /* unique per request, for pyx_interrupt */
    long long chain; /* the request's chain: the seq of the request whose
                        erlang.call led to it, through the BEAM; else its own */
    pyx_ctx *ctx;   /* the request's context */
    pyx_out *out;   /* where the reply goes */
    void *below;    /* the pyx_job this one runs on top of (pyx_queue_pop_for) */
    uintptr_t go;   /* PYX_JOB_GO: cgo.Handle of a Go func(); request: of its
                       Context, for tracebacks (0: none) */
    size_t reply_len, payload_len;
    unsigned char data[]; /* reply prefix (the caller's id), then payload
                             (or, in_file, the path of the file holding it) */
} pyx_job;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pyx_job **items;
    size_t head, n, cap;
    int closed;
    int busy;         /* atomic: pops left that count as under load */
    int selective;    /* under mu: the popper waits for a given job
                         (pyx_queue_pop_for), so every push wakes it */
    pyx_job *running; /* popped and not yet done; only under mu */
} pyx_queue;

static inline pyx_queue *pyx_queue_new(size_t cap)
{
    pyx_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->items = calloc(cap, sizeof *q->items);
    if (q->items == NULL) {
        free(q);
        return NULL;
    }
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return q;
}

/* Takes the job: 0 queued; -1 full, -2 closed, and then the job is freed. */
static inline int pyx_queue_push(pyx_queue *q, pyx_job *j)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->closed)
        rc = -2;
    else if (q->n == q->cap)
        rc = -1;
    else {
        q->items[(q->head + q->n) % q->cap] = j;
        __atomic_store_n(&q->n, q->n + 1, __ATOMIC_RELEASE);
        if (q->n == 1 || q->selective)
            pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        free(j);
    return rc;
}

/* Queues a request, copying reply and payload (Go memory may not be kept
 * by C). 0, -1 full, -2 closed, -3 out of memory. */
static inline int pyx_queue_request(pyx_queue *q, pyx_ctx *ctx, pyx_out *out, uintptr_t go, int op,
                                    long long seq, long long chain, const void *reply, size_t rlen,
                                    const void *payload, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + rlen + plen);
    if (j == NULL)
        return -3;
    *j = (pyx_job){.kind = PYX_JOB_REQUEST, .op = op, .seq = seq, .chain = chain ? chain : seq, .ctx = ctx,
                   .out = out, .go = go, .reply_len = rlen, .payload_len = plen};
    if (rlen > 0)
        memcpy(j->data, reply, rlen);
    if (plen > 0)
        memcpy(j->data + rlen, payload, plen);
    return pyx_queue_push(q, j);
}

/* Queues a request whose payload is the first plen bytes of the file at
 * path (a slot, exec.c). Copies reply and path. As pyx_queue_request. */
static inline int pyx_queue_file_request(pyx_queue *q, pyx_ctx *ctx, pyx_out *out, uintptr_t go, int op,
                                         long long seq, long long chain, const void *reply, size_t rlen,
                                         const char *path, size_t pathlen, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + rlen + pathlen + 1);
    if (j == NULL)
        return -3;
    *j = (pyx_job){.kind = PYX_JOB_REQUEST, .op = op, .in_file = 1, .seq = seq, .chain = chain ? chain : seq,
                   .ctx = ctx, .out = out, .go = go, .reply_len = rlen, .payload_len = plen};
    if (rlen > 0)
        memcpy(j->data, reply, rlen);
    memcpy(j->data + rlen, path, pathlen);
    j->data[rlen + pathlen] = 0;
    return pyx_queue_push(q, j);
}

/* Queues the BEAM's answer to callback cb (a versioned term). As
 * pyx_queue_request. */
static inline int pyx_queue_cb_reply(pyx_queue *q, long long cb, const void *payload, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + plen);
    if (j == NULL)
        return -3;
    *j = (pyx_job){.kind = PYX_JOB_CB_REPLY, .seq = cb, .payload_len = plen};
    if (plen > 0)
        memcpy(j->data, payload, plen);
    return pyx_queue_push(q, j);
}

/* Queues a Go func() (a cgo.Handle), run on the executor's thread. */
static inline int pyx_queue_go(pyx_queue *q, uintptr_t handle)
{
    pyx_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return -3;
    j->kind = PYX_JOB_GO;
    j->go = handle;
    return pyx_queue_push(q, j);
}

static inline long long pyx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Pops, after one that left work waiting, during which the queue counts
 * as under load. */
#define PYX_BUSY_POPS 16

/* Blocks until a job comes and marks it running; NULL once closed and
 * drained. It first polls for spin_ns: a sleeping thread takes tens of
 * microseconds to wake on these machines, longer than a request. The poll
 * yields the CPU at each turn, so that on a busy machine it gives way to
 * the threads (the BEAM's among them) that have work. Under load (a job
 * was left waiting in the last PYX_BUSY_POPS pops) it polls for
 * busy_spin_ns instead: requests then keep coming anyway, and the CPU the
 * poll takes is the BEAM's, which sends them (64 callers: 146k -> 181k
 * calls/s, medians of one interleaved run of 6 rounds). */
static inline pyx_job *pyx_queue_pop(pyx_queue *q, long long spin_ns, long long busy_spin_ns)
{
    pyx_job *j = NULL;
    if (__atomic_load_n(&q->busy, __ATOMIC_RELAXED) > 0)
        spin_ns = busy_spin_ns;
    if (spin_ns > 0 && __atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0) {
        long long until = pyx_now_ns() + spin_ns;
        while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0 && pyx_now_ns() < until)
            sched_yield();
    }
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    int busy = __atomic_load_n(&q->busy, __ATOMIC_RELAXED);
    if (q->n >= 2)
        __atomic_store_n(&q->busy, PYX_BUSY_POPS, __ATOMIC_RELAXED);
    else if (busy > 0)
        __atomic_store_n(&q->busy, busy - 1, __ATOMIC_RELAXED);
    if (q->n > 0) {
        j = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    q->running = j;
    pthread_mutex_unlock(&q->mu);
    return j;
}

/* j or a request below it (on whose behalf it runs) is cancelled: a
 * cancel stops the whole chain, so a nested request waiting in
 * erlang.call stops waiting too. Only erlang.call's wait looks. */
static inline int pyx_chain_cancelled(const pyx_job *j)
{
    for (; j != NULL; j = j->below)
        if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
            return 1;
    return 0;
}

/* For an executor inside erlang.call (no GIL held): blocks until the
 * answer to callback cb comes, or a request of chain comes (the BEAM
 * calling back into this executor on behalf of the waiting request), and
 * takes it out of the queue, however far back; other jobs wait. A request
 * taken is marked running, as pyx_queue_pop does; pyx_queue_resume gives
 * the mark back to outer once it is done. NULL when outer (or a request
 * below it) is cancelled or the queue closed. Like pyx_queue_pop, it polls
 * for spin_ns (each time the queue grows without what it waits for) before
 * it sleeps: the answer comes a port round trip later. */
static inline pyx_job *pyx_queue_pop_for(pyx_queue *q, long long cb, long long chain, pyx_job *outer,
                                         long long spin_ns)
{
    pyx_job *j = NULL;
    pthread_mutex_lock(&q->mu);
    q->selective++;
    while (j == NULL && !q->closed && !pyx_chain_cancelled(outer)) {
        for (size_t i = 0; i < q->n; i++) {
            pyx_job *c = q->items[(q->head + i) % q->cap];
            if ((c->kind == PYX_JOB_CB_REPLY && c->seq == cb) || (c->kind == PYX_JOB_REQUEST && c->chain == chain)) {
                for (size_t k = i; k + 1 < q->n; k++) /* close the gap */
                    q->items[(q->head + k) % q->cap] = q->items[(q->head + k + 1) % q->cap];
                __atomic_store_n(&q->n, q->n - 1, __ATOMIC_RELEASE);
                j = c;
                break;
            }
        }
        if (j != NULL)
            break;
        size_t seen = q->n;
        long long now = pyx_now_ns(), until = now + spin_ns;
        if (spin_ns > 0) {
            pthread_mutex_unlock(&q->mu);
            while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == seen && now < until &&
                   !pyx_chain_cancelled(outer)) {
                sched_yield();
                now = pyx_now_ns();
            }
            pthread_mutex_lock(&q->mu);
        }
        /* a cancel after the poll's last look has signalled no one */
        if (q->n == seen && now >= until && !pyx_chain_cancelled(outer))
            pthread_cond_wait(&q->cv, &q->mu);
    }
    q->selective--;
    if (j != NULL && j->kind == PYX_JOB_REQUEST) {
        j->below = outer;
        q->running = j;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

/* A request taken by pyx_queue_pop_for is over: outer runs again. */
static inline void pyx_queue_resume(pyx_queue *q, pyx_job *outer)
{
    pthread_mutex_lock(&q->mu);
    q->running = outer;
    pthread_mutex_unlock(&q->mu);
}

/* The running job is over; the caller frees it after this. */
static inline void pyx_queue_done(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->running = NULL;
    pthread_mutex_unlock(&q->mu);
}

static inline int job_is(const pyx_job *j, const pyx_out *out, const void *reply, size_t rlen)
{
    return j != NULL && j->kind == PYX_JOB_REQUEST && j->out == out && j->reply_len == rlen &&
           memcmp(j->data, reply, rlen) == 0;
}

/* Cancels the requests whose reply prefix is reply: queued ones will be
 * skipped without running; a running one (or one below it, waiting in
 * erlang.call) is marked. Returns the seq of the request running on top,
 * for pyx_interrupt, or 0: a cancelled request stops its whole chain. */
static inline long long pyx_queue_cancel(pyx_queue *q, const pyx_out *out, const void *reply, size_t rlen)
{
    long long running = 0;
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n; i++) {
        pyx_job *j = q->items[(q->head + i) % q->cap];
        if (job_is(j, out, reply, rlen))
            __atomic_store_n(&j->cancelled, 1, __ATOMIC_RELEASE);
    }
    for (pyx_job *r = q->running; r != NULL; r = r->below)
        if (job_is(r, out, reply, rlen)) {
            __atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
            if (r->cancel_ns == 0)
                r->cancel_ns = pyx_now_ns();
            running = q->running->seq;
            pthread_cond_signal(&q->cv); /* it may wait in pyx_queue_pop_for */
            break;
        }
    pthread_mutex_unlock(&q->mu);
    return running;
}

/* For the stuck watchdog (pool.go), which calls it only while a cancel
 * is pending, never per request: looks at the requests running (the top
 * one and those below it, waiting in erlang.call) for one cancelled while
 * it ran. -1: none; 0: some, all cancelled less than grace_ns ago; 1: one
 * was cancelled grace_ns ago or more and still runs, its context's id in
 * *ctx. A request that ends leaves the running chain (pyx_queue_done,
 * pyx_queue_resume) under mu, before it is freed. */
static inline int pyx_queue_stuck(pyx_queue *q, long long grace_ns, long long *ctx)
{
    int rc = -1;
    long long now = pyx_now_ns();
    pthread_mutex_lock(&q->mu);
    for (pyx_job *r = q->running; r != NULL; r = r->below) {
        if (r->cancel_ns == 0)
            continue;
        if (now - r->cancel_ns >= grace_ns) {
            *ctx = r->ctx != NULL ? r->ctx->id : 0;
            rc = 1;
            break;
        }
        rc = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static inline void pyx_queue_close(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
#endif
