/* loop.h: the asyncio event loop of each context, driven by its executor
 * between requests (loop.c, py/loop.py; docs/async.md).
 *
 * A context's loop (erlang.ErlangEventLoop, a SelectorEventLoop) is made
 * on first use, on the executor's thread, and registered here, in the
 * executor's queue (queue.h: loops, loop_fd, in_loop, loop_active). When a
 * loop has work (ready handles, timers, readers, tasks) the executor's
 * idle wait becomes steps of its loops: one _run_once each, whose select
 * also watches loop_fd, an eventfd that a job pushed meanwhile writes (in
 * pyx_queue_push, under the queue's mutex, once per select), so a request
 * is taken between two steps and sync calls are served while coroutines
 * wait. With no work the executor waits in pyx_queue_pop as before: an
 * idle loop costs a request one atomic load.
 *
 * Tasks (op PYX_TASK): a call whose result is awaitable becomes a task on
 * the loop (task.h: pyx_task_defer); its reply goes when it ends, written by
 * erlang._task_reply. While a loop steps, the code it runs sees as its
 * request a job of kind PYX_JOB_LOOP of the loop's context (current.h),
 * so erlang.call, erlang.send and the log lines know their context.
 *
 * The seams for other features: a Python object that wakes a task from
 * another thread calls loop.call_soon_threadsafe (which kicks the
 * executor, _loop_kick); one that waits on a file descriptor uses
 * loop.add_reader. No GIL is held on entry of the functions below unless
 * they say so; nothing here calls into Go. */
#ifndef PYX_LOOP_H
#define PYX_LOOP_H

#include "ctx.h"
#include "queue.h"

/* exec.c's pop: pyx_queue_pop while no loop of q has work; else a job
 * taken at once if one waits, or steps of the loops until one comes. NULL
 * once q is closed and drained. */
pyx_job *pyx_loop_pop(pyx_queue *q, long long spin_ns, long long busy_spin_ns);
/* Go's Cancel: queues the cancel of the task whose reply prefix is reply,
 * if q has loops (PYX_JOB_LOOP_CANCEL); else nothing. As
 * pyx_queue_request. */
int pyx_loop_cancel(pyx_queue *q, pyx_out *out, const void *reply, size_t rlen);
/* exec.c: runs a PYX_JOB_LOOP_CANCEL job: the task, if on a loop of q, is
 * cancelled (CancelledError in it; its end answers it). */
void pyx_loop_cancel_run(pyx_queue *q, pyx_job *j);
/* exec.c, after the drop of an environment: process pid (its ETF, no
 * version byte) exited, so its tasks on c's loop are cancelled. */
void pyx_loop_down(pyx_queue *q, pyx_ctx *c, const void *pid, size_t len);
/* exec.c: the BEAM's answer j to a callback: to the erlang.async_call of
 * a loop of q that waits for it; else dropped (an erlang.call that gave
 * up). */
void pyx_loop_cb_reply(pyx_queue *q, pyx_job *j);
/* interp.c, GIL held, on c's executor thread, before c goes: its loop
 * answers its pending tasks as cancelled and is closed. */
void pyx_loop_forget(pyx_ctx *c);
/* The seam for jobs of other features (a channel's data, a stream's
 * credit): after a job's handler resolved a future or scheduled a callback
 * on a loop of q (with that loop's GIL, on the executor's thread), it
 * calls this so the executor steps the loops before it waits again. Any
 * thread, no GIL needed; from another thread it also wakes the executor's
 * wait. */
void pyx_loop_ready(pyx_queue *q);
/* erlmod.c, GIL held: adds the loop's C functions to the erlang module.
 * 0 or -1 with an exception. */
int pyx_loop_add_functions(PyObject *module);
#endif
