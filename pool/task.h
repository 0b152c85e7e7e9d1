/* task.h: a task request's awaitable result handed to its context's event
 * loop (loop.h, docs/async.md): erlang._task_start in py/loop.py makes it
 * a task whose end answers the request. Below run.c, which calls it, and
 * beside loop.c, which drives the loop: it only calls Python. Nothing here
 * calls into Go. */
#ifndef PYX_TASK_H
#define PYX_TASK_H

#include "ctx.h"

/* run.c, GIL held: the result res (borrowed) of a task request. 1: res is
 * awaitable and now runs as a task on c's loop, which answers the request
 * when it ends; 0: not awaitable (answer it now); -1 with an exception.
 * spawn: nobody waits for the answer, so a failure is logged at error. */
int pyx_task_defer(pyx_ctx *c, PyObject *res, int spawn);
#endif
