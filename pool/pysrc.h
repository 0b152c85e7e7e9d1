/* pysrc.h: the sidecar's Python source (the .py files of pool/py and
 * pyetf/py/terms.py), embedded in Go and handed to C at start-up. */
#ifndef PYX_PYSRC_H
#define PYX_PYSRC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum {
    PYX_PY_TERMS,     /* the term classes of the erlang module */
    PYX_PY_ERLANG,    /* the rest of the erlang module's Python */
    PYX_PY_BOOT,      /* each interpreter's start-up: _boot(paths, guard) */
    PYX_PY_LOGSTREAM, /* sys.stdout and sys.stderr: _install(out, err) */
    PYX_PY_STREAM,    /* py:stream's helpers, in the erlang module (stream.h) */
    PYX_PY_CHANNEL,   /* erlang.Channel, ByteChannel, PyBuffer (channel.h) */
    PYX_PY_LOOP,      /* the event loop (loop.h), in the erlang module */
    PYX_PY_COUNT,
};

/* Sets source which: name is its file name in tracebacks. Both are kept,
 * not copied. Before pyx_init_main, on one thread. */
void pyx_py_set(int which, const char *name, const char *src);
/* Runs source which in the namespace ns (borrowed). GIL held. 0, or -1
 * with an exception set. */
int pyx_py_run(int which, PyObject *ns);
#endif
