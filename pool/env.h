/* env.h: process-bound environments (API.md section 3): inside a context,
 * each Erlang process that makes requests has globals of its own, a copy
 * of the context's __main__ made on its first request, kept until the BEAM
 * says the process exited ({down, Ctxs}, docs/PROTOCOL.md). The functions
 * here hold the GIL of the context's interpreter, but pyx_env_drop;
 * nothing calls into Go. */
#ifndef PYX_ENV_H
#define PYX_ENV_H

#include "ctx.h"

/* The globals of the process whose pid's ETF (no version byte) is
 * pid[0..len): borrowed, NULL with an exception. *created is set to 1
 * when the environment was made now (the BEAM must then watch the
 * process: pyx_env_notice). */
PyObject *pyx_env_for(pyx_ctx *c, const void *pid, size_t len, int *created);
/* Forgets the environment of that process, if it has one here. Its
 * objects go when nothing else holds them (the garbage collector breaks
 * the cycles of functions and their globals). The one function here
 * called without the GIL: on c's executor thread, between requests, it
 * takes it. */
void pyx_env_drop(pyx_ctx *c, const void *pid, size_t len);
/* A reference to obj for Erlang (API.md section 12): its number, held by
 * the process of the environment the request runs in (c->env_pid), and
 * released with it; -1 with an exception. */
long long pyx_ref_new(pyx_ctx *c, PyObject *obj);
/* The object of ref n (borrowed), or NULL with a KeyError. */
PyObject *pyx_ref_get(pyx_ctx *c, long long n);
/* Releases ref n; 0, or -1 (none) with a KeyError. */
int pyx_ref_release(pyx_ctx *c, long long n);
/* The number of environments in c. */
Py_ssize_t pyx_env_count(pyx_ctx *c);
/* Frees the table (the context goes). */
void pyx_env_release(pyx_ctx *c);
#endif
