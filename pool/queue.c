/* queue.c: an executor's bounded queue of jobs (queue.h): push, pop,
 * the selective pop of erlang.call, cancel and the stuck check. */
#include "queue.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

void pyx_queue_wake_loop(pyx_queue *q, int always)
{
    if (!q->in_loop || (q->loop_woken && !always))
        return;
    uint64_t one = 1;
    q->loop_woken = 1;
    (void)!write(q->loop_fd, &one, sizeof one); /* EAGAIN: it is readable anyway */
}

pyx_queue *pyx_queue_new(size_t cap)
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
    q->loop_fd = -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    return q;
}

int pyx_queue_push(pyx_queue *q, pyx_job *j)
{
    int rc = PYX_QUEUE_OK;
    pthread_mutex_lock(&q->mu);
    if (q->closed)
        rc = PYX_QUEUE_CLOSED;
    else if (q->n == q->cap)
        rc = PYX_QUEUE_FULL;
    else {
        q->items[(q->head + q->n) % q->cap] = j;
        __atomic_store_n(&q->n, q->n + 1, __ATOMIC_RELEASE);
        if (q->n == 1 || q->selective)
            pthread_cond_signal(&q->cv);
        pyx_queue_wake_loop(q, 0);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc != 0)
        free(j);
    return rc;
}

int pyx_queue_request(pyx_queue *q, pyx_ctx *ctx, long long ctx_id, pyx_out *out, int op, long long seq,
                      long long chain, const void *reply, size_t rlen, const void *caller, size_t clen,
                      const void *payload, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + rlen + plen + clen);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    *j = (pyx_job){.kind = PYX_JOB_REQUEST, .op = op, .seq = seq, .chain = chain ? chain : seq, .ctx = ctx,
                   .ctx_id = ctx_id, .out = out, .reply_len = rlen, .payload_len = plen,
                   .caller_off = rlen + plen, .caller_len = clen};
    if (rlen > 0)
        memcpy(j->data, reply, rlen);
    if (plen > 0)
        memcpy(j->data + rlen, payload, plen);
    if (clen > 0)
        memcpy(j->data + rlen + plen, caller, clen);
    return pyx_queue_push(q, j);
}

int pyx_queue_file_request(pyx_queue *q, pyx_ctx *ctx, long long ctx_id, pyx_out *out, int op, long long seq,
                           long long chain, const void *reply, size_t rlen, const void *caller, size_t clen,
                           const char *path, size_t pathlen, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + rlen + pathlen + 1 + clen);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    *j = (pyx_job){.kind = PYX_JOB_REQUEST, .op = op, .in_file = 1, .seq = seq, .chain = chain ? chain : seq,
                   .ctx = ctx, .ctx_id = ctx_id, .out = out, .reply_len = rlen, .payload_len = plen,
                   .caller_off = rlen + pathlen + 1, .caller_len = clen};
    if (rlen > 0)
        memcpy(j->data, reply, rlen);
    memcpy(j->data + rlen, path, pathlen);
    j->data[rlen + pathlen] = 0;
    if (clen > 0)
        memcpy(j->data + rlen + pathlen + 1, caller, clen);
    return pyx_queue_push(q, j);
}

int pyx_queue_cb_reply(pyx_queue *q, long long cb, const void *payload, size_t plen)
{
    pyx_job *j = malloc(sizeof *j + plen);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    *j = (pyx_job){.kind = PYX_JOB_CB_REPLY, .seq = cb, .payload_len = plen};
    if (plen > 0)
        memcpy(j->data, payload, plen);
    return pyx_queue_push(q, j);
}

int pyx_queue_drop_env(pyx_queue *q, pyx_ctx *ctx, const void *pid, size_t len)
{
    pyx_job *j = malloc(sizeof *j + len);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    *j = (pyx_job){.kind = PYX_JOB_DROP_ENV, .ctx = ctx, .payload_len = len};
    memcpy(j->data, pid, len);
    return pyx_queue_push(q, j);
}

int pyx_queue_go(pyx_queue *q, uintptr_t handle)
{
    pyx_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    j->kind = PYX_JOB_GO;
    j->go = handle;
    return pyx_queue_push(q, j);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Pops, after one that left work waiting, during which the queue counts
 * as under load. */
#define PYX_BUSY_POPS 16

pyx_job *pyx_queue_pop(pyx_queue *q, long long spin_ns, long long busy_spin_ns)
{
    pyx_job *j = NULL;
    if (__atomic_load_n(&q->busy, __ATOMIC_RELAXED) > 0)
        spin_ns = busy_spin_ns;
    if (spin_ns > 0 && __atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0) {
        long long until = now_ns() + spin_ns;
        while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0 && now_ns() < until)
            sched_yield();
    }
    pthread_mutex_lock(&q->mu);
    /* a loop given work wakes it too (loop.c), with no job: NULL then */
    while (q->n == 0 && !q->closed && !__atomic_load_n(&q->loop_active, __ATOMIC_ACQUIRE))
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

/* A cancel stops the whole chain, so a nested request waiting in
 * erlang.call (or in pyx_wait) stops waiting too. */
int pyx_job_cancelled(const pyx_job *j)
{
    for (; j != NULL; j = j->below)
        if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
            return 1;
    return 0;
}

/* Under q->mu: takes the job i places from the head out of q, however
 * far back, closing the gap. */
static pyx_job *take_at(pyx_queue *q, size_t i)
{
    pyx_job *j = q->items[(q->head + i) % q->cap];
    for (size_t k = i; k + 1 < q->n; k++)
        q->items[(q->head + k) % q->cap] = q->items[(q->head + k + 1) % q->cap];
    __atomic_store_n(&q->n, q->n - 1, __ATOMIC_RELEASE);
    return j;
}

pyx_job *pyx_queue_pop_for(pyx_queue *q, long long cb, long long chain, pyx_job *outer, long long spin_ns)
{
    pyx_job *j = NULL;
    pthread_mutex_lock(&q->mu);
    q->selective++;
    while (j == NULL && !q->closed && !pyx_job_cancelled(outer)) {
        for (size_t i = 0; i < q->n; i++) {
            pyx_job *c = q->items[(q->head + i) % q->cap];
            if ((c->kind == PYX_JOB_CB_REPLY && c->seq == cb) || (c->kind == PYX_JOB_REQUEST && c->chain == chain)) {
                j = take_at(q, i);
                break;
            }
        }
        if (j != NULL)
            break;
        size_t seen = q->n;
        long long now = now_ns(), until = now + spin_ns;
        if (spin_ns > 0) {
            pthread_mutex_unlock(&q->mu);
            while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == seen && now < until &&
                   !pyx_job_cancelled(outer)) {
                sched_yield();
                now = now_ns();
            }
            pthread_mutex_lock(&q->mu);
        }
        /* a cancel after the poll's last look has signalled no one */
        if (q->n == seen && now >= until && !pyx_job_cancelled(outer))
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

void pyx_queue_resume(pyx_queue *q, pyx_job *outer)
{
    pthread_mutex_lock(&q->mu);
    q->running = outer;
    pthread_mutex_unlock(&q->mu);
}

void pyx_queue_done(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->running = NULL;
    pthread_mutex_unlock(&q->mu);
}

static int job_is(const pyx_job *j, const pyx_out *out, const void *reply, size_t rlen)
{
    return j != NULL && j->kind == PYX_JOB_REQUEST && j->out == out && j->reply_len == rlen &&
           memcmp(j->data, reply, rlen) == 0;
}

long long pyx_queue_cancel(pyx_queue *q, const pyx_out *out, const void *reply, size_t rlen)
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
                r->cancel_ns = now_ns();
            running = q->running->seq;
            pthread_cond_signal(&q->cv); /* it may wait in pyx_queue_pop_for */
            pyx_queue_wake_loop(q, 1);   /* or in a loop's select (erlang.run) */
            if (q->wake != NULL) {       /* or in pyx_wait: lock order q->mu, then wake's */
                pthread_mutex_lock(&q->wake->mu);
                pthread_cond_broadcast(&q->wake->cv);
                pthread_mutex_unlock(&q->wake->mu);
            }
            break;
        }
    pthread_mutex_unlock(&q->mu);
    return running;
}

int pyx_queue_stuck(pyx_queue *q, long long grace_ns, long long *ctx)
{
    int rc = -1;
    long long now = now_ns();
    pthread_mutex_lock(&q->mu);
    for (pyx_job *r = q->running; r != NULL; r = r->below) {
        if (r->cancel_ns == 0)
            continue;
        if (now - r->cancel_ns >= grace_ns) {
            *ctx = r->ctx_id;
            rc = 1;
            break;
        }
        rc = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void pyx_queue_watch(pyx_queue *q, pyx_wake *w)
{
    pthread_mutex_lock(&q->mu);
    q->wake = w;
    pthread_mutex_unlock(&q->mu);
}

void pyx_queue_close(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

pyx_job *pyx_queue_pop_any(pyx_queue *q, pyx_job *outer, int (*ready)(void *), void *arg, long long deadline_ns,
                           int cancellable, int *why)
{
    pyx_job *j = NULL;
    pthread_mutex_lock(&q->mu);
    q->selective++; /* every push signals cv now */
    for (;;) {
        if (ready(arg)) { /* before the jobs: what it waits for wins */
            *why = 0;
            break;
        }
        if (q->closed || (cancellable && pyx_job_cancelled(outer))) {
            *why = 2;
            break;
        }
        for (size_t i = 0; i < q->n && j == NULL; i++) {
            pyx_job *c = q->items[(q->head + i) % q->cap];
            if (c->kind != PYX_JOB_REQUEST)
                continue; /* set-up, exits, answers: for the loop, later */
            j = take_at(q, i);
        }
        if (j != NULL)
            break;
        if (deadline_ns < 0) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        long long left = deadline_ns - now_ns();
        if (left <= 0) {
            *why = 1;
            break;
        }
        struct timespec ts; /* cv is on CLOCK_REALTIME */
        clock_gettime(CLOCK_REALTIME, &ts);
        long long at = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec + left;
        ts.tv_sec = (time_t)(at / 1000000000LL);
        ts.tv_nsec = (long)(at % 1000000000LL);
        (void)pthread_cond_timedwait(&q->cv, &q->mu, &ts); /* ETIMEDOUT: one more look */
    }
    q->selective--;
    if (j != NULL) {
        j->below = outer;
        q->running = j;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

void pyx_queue_poke(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    pthread_cond_signal(&q->cv); /* only its executor's thread waits on it */
    pthread_mutex_unlock(&q->mu);
}
