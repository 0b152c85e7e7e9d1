/* pylog.h: sys.stdout and sys.stderr of every interpreter, line-buffered
 * writers whose lines go to the Erlang logger as '$log' packets
 * (docs/PROTOCOL.md, "Log packets"). Nothing here calls into Go. */
#ifndef PYX_PYLOG_H
#define PYX_PYLOG_H
#include "ctx.h"

/* The two sinks of one interpreter: [0] stdout (notice), [1] stderr
 * (warning). */
struct pyx_stdio {
    PyObject *sink[2]; /* strong; never released (interpreters live on) */
};

/* Makes the sinks of the current interpreter and installs sys.stdout and
 * sys.stderr on them. GIL held. 0, or -1 with an exception set. */
int pyx_stdio_install(pyx_stdio *io);

/* Makes context id the one that output written by Python threads of the
 * sinks' interpreter is logged for (set), or, if it is that context,
 * leaves none (!set), as the `erlang` module's home context. GIL held. */
void pyx_stdio_home(pyx_stdio *io, long long id, int set);

/* Sends the partial lines the sinks hold. GIL held. */
void pyx_stdio_flush(pyx_stdio *io);

#endif
