/* stream.h: generators as messages (py:stream*, docs/streams.md), the C
 * side: what pool/py/stream.py needs of the context. The streams
 * themselves are object references of the context (env.h), held by the
 * process that opened them; each batch is an ordinary request. GIL held
 * in every function here; nothing calls into Go. */
#ifndef PYX_STREAM_H
#define PYX_STREAM_H

#include "ctx.h"

/* Adds _stream_globals and _stream_adopt to the `erlang` module, then runs
 * py/stream.py in its dict (erlmod.c's exec slot). 0, or -1 with an
 * exception set. */
int pyx_stream_add_functions(PyObject *module);
#endif
