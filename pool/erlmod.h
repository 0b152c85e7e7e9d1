/* erlmod.h: the built-in `erlang` module seen by Python code (erlmod.c);
 * its state_* functions: erlmod_state.h. GIL held for each. */
#ifndef PYX_ERLMOD_H
#define PYX_ERLMOD_H

#include "ctx.h"

/* The module's init function, for PyImport_AppendInittab. */
PyMODINIT_FUNC pyx_erlang_init(void);

/* Makes c the context that Python threads of its interpreter call Erlang
 * for (set), or, if it is, stops it being that (!set). module: the
 * `erlang` module of c's interpreter. */
void pyx_erlang_home(PyObject *module, pyx_ctx *c, int set);
#endif
