/* erlmod_state.h: erlang.state_set, state_get, state_delete, state_keys,
 * state_incr and state_decr: the shared state (store/store.h) seen from
 * Python (API.md section 7). */
#ifndef PYX_ERLMOD_STATE_H
#define PYX_ERLMOD_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Adds the functions to the `erlang` module (erlmod.c's exec slot). GIL
 * held. 0, or -1 with an exception set. */
int pyx_state_add_functions(PyObject *module);
#endif
