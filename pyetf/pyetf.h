/* pyetf.h: External Term Format <-> Python objects (convert.c).
 *
 * Rules for every function here: the caller holds the GIL of the
 * interpreter the objects belong to; nothing here calls back into Go. */
#ifndef PYX_PYETF_H
#define PYX_PYETF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "buf.h"

/* Per-interpreter classes of the `erlang` module that stand for Erlang
 * terms Python has no type for. Strong references, owned by the context;
 * each class is called with one bytes argument, the term's ETF encoding
 * (tag first, no version byte), and keeps it in the attribute `_etf`. */
typedef struct {
    PyObject *pid_type;    /* erlang.Pid */
    PyObject *ref_type;    /* erlang.Ref */
    PyObject *opaque_type; /* erlang.Opaque: ports, funs, exports */
    PyObject *atom_type;   /* erlang.Atom, a subclass of str */
    PyObject *buffer_type; /* erlang.PyBuffer, or NULL: py_buffer's handle, a
                              7-tuple {py_buffer, ...}, becomes buffer_type(tuple)
                              (docs/channels.md); it is called with the tuple */
} pyx_types;

/* ETF -> Python. Decodes one term without version byte from buf[*pos..len)
 * and advances *pos past it. Returns a new reference, or NULL with an
 * exception set: ValueError for malformed input, RecursionError when nested
 * too deep, MemoryError. */
PyObject *pyx_from_etf(const pyx_types *t, const unsigned char *buf, size_t len, size_t *pos);

/* Python -> ETF. Appends the encoding of obj (no version byte) to out.
 * 0 on success; -1 with an exception set: TypeError naming the type of an
 * object that has no term, RecursionError when nested too deep (or
 * self-referencing), OverflowError, MemoryError. On failure out->len may
 * have grown; the caller truncates. */
int pyx_to_etf(const pyx_types *t, PyObject *obj, pyx_buf *out);

/* Whether None becomes the atom nil (1) or none (0, the default); set
 * before any conversion runs (--none-as), never while they do. */
void pyx_set_none_as_nil(int nil);

#endif
