/* queue.h: a bounded queue of job numbers that an executor thread waits
 * on in C, so that waking it costs one futex wake and not a Go scheduler
 * hand-off to a locked thread (PLATFORM.md: 18-40 us). No GIL involved;
 * nothing here calls into Go. */
#ifndef PYX_QUEUE_H
#define PYX_QUEUE_H
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sched.h>
#include <time.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uintptr_t *items;
    size_t head, n, cap;
    int closed;
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

/* 0 queued, -1 full, -2 closed. */
static inline int pyx_queue_push(pyx_queue *q, uintptr_t item)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->closed)
        rc = -2;
    else if (q->n == q->cap)
        rc = -1;
    else {
        q->items[(q->head + q->n) % q->cap] = item;
        __atomic_store_n(&q->n, q->n + 1, __ATOMIC_RELEASE);
        if (q->n == 1)
            pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static inline long long pyx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Blocks until an item comes; 0 once closed and drained. It first polls
 * for spin_ns: a sleeping thread takes tens of microseconds to wake on
 * these machines, longer than a request. The poll yields the CPU at each
 * turn, so that on a busy machine it gives way to the threads (the BEAM's
 * among them) that have work, instead of starving them. */
static inline uintptr_t pyx_queue_pop(pyx_queue *q, long long spin_ns)
{
    uintptr_t item = 0;
    if (spin_ns > 0 && __atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0) {
        long long until = pyx_now_ns() + spin_ns;
        while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0 && pyx_now_ns() < until)
            sched_yield();
    }
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->n > 0) {
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

static inline void pyx_queue_close(pyx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
#endif
