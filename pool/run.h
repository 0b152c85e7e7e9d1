/* run.h: running one request in a context (run.c). Nothing here calls
 * into Go. */
#ifndef PYX_RUN_H
#define PYX_RUN_H

#include "ctx.h"

/* Who a request runs for: its calling process (pid: the ETF of its pid,
 * no version byte; len 0: none, the request runs in the context's
 * __main__) and whether it runs on top of a request waiting in
 * erlang.call (its chain is another's), whose globals it then uses.
 * pyx_run sets created when it made the caller's environment. */
typedef struct {
    const void *pid;
    size_t len;
    int nested;
    int created;
    int unwatched; /* set by pyx_run: a fire-and-forget task (loop.h), whose
                      error nobody receives: log it at error */
} pyx_caller;

/* Runs one request on ctx's executor thread: takes and drops the GIL.
 * payload is a versioned ETF term; the versioned ETF result is appended to
 * out, and the traceback (UTF-8 text) of a Python exception to traceback.
 * It runs with the globals of who's environment (env.h). A PYX_TASK
 * whose result became a task (loop.h) leaves out empty: no reply now. */
void pyx_run(pyx_ctx *ctx, long long seq, pyx_caller *who, int op, const unsigned char *payload, size_t len,
             pyx_buf *out, pyx_buf *traceback);
/* For loop.c, GIL held: appends {ok, Term} for res (borrowed) to out, or
 * the error of its conversion; and for the pending exception, its
 * traceback to traceback and {error, {'Name', Msg}} to out, clearing it. */
void pyx_run_ok(pyx_ctx *c, PyObject *res, pyx_buf *out);
void pyx_run_error(pyx_buf *traceback, pyx_buf *out);
/* Raises KeyboardInterrupt in ex's thread if request seq is still running
 * there. Any thread; blocks until it gets the interpreter's GIL. */
int pyx_interrupt(pyx_exec *ex, long long seq);
/* A cancel interrupts a request once, as a Ctrl-C does CPython's main
 * thread: with one KeyboardInterrupt, raised at its next bytecode (by
 * pyx_interrupt) or by the wait it is in (wait.h), whichever comes first;
 * the waits of the except and finally blocks that it runs then wait as
 * usual. For a wait, GIL held, before it: 1 if a cancel is to end it, 0
 * if not (no request runs on this thread, or its interrupt was raised
 * already), -1 with KeyboardInterrupt set if the request is cancelled and
 * its interrupt not raised yet: it is raised now, instead of waiting. */
int pyx_wait_begin(void);
/* GIL held, after a wait that a cancel ended, or in place of one: raises
 * KeyboardInterrupt, and takes back the one that pyx_interrupt may have
 * left pending in the thread. */
void pyx_interrupted(void);
#endif
