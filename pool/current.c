/* current.c: the request running on this thread (current.h), set by the
 * executor loop, read by the code that Python calls. */
#include "current.h"

static __thread pyx_job *own_job;
static __thread pyx_queue *own_queue;
static pyx_out *any_out; /* atomic */

pyx_ctx *pyx_current_ctx(void) { return own_job != NULL ? own_job->ctx : NULL; }

long long pyx_current_chain(void) { return own_job != NULL ? own_job->chain : 0; }

int pyx_current_cancelled(void) { return own_job != NULL && __atomic_load_n(&own_job->cancelled, __ATOMIC_ACQUIRE); }

pyx_out *pyx_current_output(void) { return __atomic_load_n(&any_out, __ATOMIC_ACQUIRE); }

pyx_job *pyx_current_job(void) { return own_job; }

pyx_queue *pyx_current_queue(void) { return own_queue; }

void pyx_current_set_queue(pyx_queue *q) { own_queue = q; }

pyx_job *pyx_current_enter(pyx_job *j)
{
    pyx_job *outer = own_job;
    own_job = j;
    if (__atomic_load_n(&any_out, __ATOMIC_RELAXED) != j->out)
        __atomic_store_n(&any_out, j->out, __ATOMIC_RELEASE);
    return outer;
}

void pyx_current_leave(pyx_job *outer) { own_job = outer; }
