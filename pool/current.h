/* current.h: the request running on the calling thread, for the code that
 * Python calls (the `erlang` module, the log sinks): its context, its
 * chain, whether it was cancelled, and the output requests answer on.
 * The executor loop (exec.c) sets it. No GIL involved; nothing here calls
 * into Go. */
#ifndef PYX_CURRENT_H
#define PYX_CURRENT_H

#include "ctx.h"
#include "output.h"
#include "queue.h"

/* The context of the request running on this thread, NULL if none (not
 * an executor's thread, or between requests). */
pyx_ctx *pyx_current_ctx(void);
/* Its chain (queue.h), 0 if none. */
long long pyx_current_chain(void);
/* Whether it was cancelled; 0 if none. */
int pyx_current_cancelled(void);
/* The output requests answer on, once one has run; else NULL. There is
 * one in the process (cmd/pyport). Any thread. */
pyx_out *pyx_current_output(void);

/* The queue of the executor whose thread calls (for its waits: wait.h,
 * loop.h, channel.h), NULL on other threads. */
pyx_queue *pyx_current_queue(void);
/* For exec.c: q is this thread's executor's queue. */
void pyx_current_set_queue(pyx_queue *q);

/* For exec.c. The job running on this thread, NULL if none. */
pyx_job *pyx_current_job(void);
/* Makes j the job running on this thread, returning the one it runs on
 * top of (NULL if none), for pyx_current_leave. */
pyx_job *pyx_current_enter(pyx_job *j);
void pyx_current_leave(pyx_job *outer);
#endif
