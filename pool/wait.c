/* wait.c: the cancellable wait (wait.h). */
#include "wait.h"

#include <time.h>

#include "current.h"

long long pyx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int pyx_wake_init(pyx_wake *w)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w->cv, &a);
    pthread_condattr_destroy(&a);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        pthread_cond_destroy(&w->cv);
        return -1;
    }
    return 0;
}

void pyx_wake_destroy(pyx_wake *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

int pyx_wait(pyx_wake *w, long long deadline_ns, int (*ready)(void *), void *arg, int cancellable)
{
    pyx_job *j = cancellable ? pyx_current_job() : NULL;
    pyx_queue *q = j != NULL ? pyx_current_queue() : NULL;
    if (q != NULL) /* before the first look at the flag: no cancel is missed */
        pyx_queue_watch(q, w);
    int rc = PYX_WAIT_TIMEOUT;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (ready != NULL && ready(arg)) {
            rc = PYX_WAIT_READY;
            break;
        }
        if (q != NULL && pyx_job_cancelled(j)) {
            rc = PYX_WAIT_CANCELLED;
            break;
        }
        if (deadline_ns < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        if (pyx_now_ns() >= deadline_ns)
            break;
        struct timespec ts = {(time_t)(deadline_ns / 1000000000LL), (long)(deadline_ns % 1000000000LL)};
        (void)pthread_cond_timedwait(&w->cv, &w->mu, &ts); /* ETIMEDOUT: the loop looks once more */
    }
    pthread_mutex_unlock(&w->mu);
    if (q != NULL)
        pyx_queue_watch(q, NULL);
    return rc;
}
