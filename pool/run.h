/* run.h: running one request in a context (run.c). Nothing here calls
 * into Go. */
#ifndef PYX_RUN_H
#define PYX_RUN_H

#include "ctx.h"

/* Runs one request on ctx's executor thread: takes and drops the GIL.
 * payload is a versioned ETF term; the versioned ETF result is appended to
 * out, and the traceback (UTF-8 text) of a Python exception to traceback. */
void pyx_run(pyx_ctx *ctx, long long seq, int op, const unsigned char *payload, size_t len, pyx_buf *out,
             pyx_buf *traceback);
/* Raises KeyboardInterrupt in ex's thread if request seq is still running
 * there. Any thread; blocks until it gets the interpreter's GIL. */
int pyx_interrupt(pyx_exec *ex, long long seq);
/* GIL held, for a wait (wait.h) that found the request running on this
 * thread cancelled: raises KeyboardInterrupt, and takes back the one that
 * pyx_interrupt may have raised in the thread meanwhile (or will), so
 * that a cancel interrupts once: a second one would hit the except and
 * finally blocks that the first one runs. */
void pyx_interrupted(void);
#endif
