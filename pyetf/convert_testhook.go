//go:build pyx_testhook

package pyetf

// Test hooks for convert.c, which convert_test.go exercises in a real
// embedded CPython (test files cannot use cgo themselves). Nothing else
// calls these. The four erlang.* classes are the real ones (TermsPy),
// without the rest of the `erlang` module.

/*
#cgo CFLAGS: -I${SRCDIR}/../port
#include <stdlib.h>
#include <string.h>
#include "pyetf.h"

// Set up once, in the main interpreter, GIL held; never freed.
static PyObject *testhook_globals;
static pyx_types testhook_types;

static void testhook_init(void)
{
    if (!Py_IsInitialized()) {
        Py_InitializeEx(0);
        PyEval_SaveThread();
    }
}

// A malloc'd "stage: Type: message" for the pending exception, which
// it clears. GIL held.
static char *testhook_error(const char *stage)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    const char *name = exc ? Py_TYPE(exc)->tp_name : "NoException";
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (msg == NULL) {
        PyErr_Clear();
        msg = "?";
    }
    size_t n = strlen(stage) + strlen(name) + strlen(msg) + 8;
    char *out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s: %s: %s", stage, name, msg);
    Py_XDECREF(s);
    Py_XDECREF(exc);
    return out;
}

// Runs the term classes' source (terms), then names them erlang.*.
static int testhook_setup(const char *terms)
{
    if (testhook_globals != NULL)
        return 0;
    PyObject *g = PyDict_New();
    if (g == NULL)
        return -1;
    PyObject *res = PyRun_String(terms, Py_file_input, g, g);
    PyObject *ns = res ? PyRun_String("import types\n"
                                      "erlang = types.SimpleNamespace(Pid=Pid, Ref=Ref, Opaque=Opaque, Atom=Atom)\n",
                                      Py_file_input, g, g)
                       : NULL;
    Py_XDECREF(res);
    if (ns == NULL) {
        Py_DECREF(g);
        return -1;
    }
    Py_DECREF(ns);
    PyObject **slots[] = {&testhook_types.pid_type, &testhook_types.ref_type,
                          &testhook_types.opaque_type, &testhook_types.atom_type};
    const char *names[] = {"Pid", "Ref", "Opaque", "Atom"};
    for (int i = 0; i < 4; i++) {
        *slots[i] = PyDict_GetItemString(g, names[i]);
        Py_INCREF(*slots[i]);
    }
    testhook_globals = g;
    return 0;
}

// Decodes in (versioned) and, when repr is not NULL, sets *repr to a
// malloc'd repr() of the object; then encodes it back into out, with a
// version byte. NULL, or a malloc'd error.
static char *testhook_round_trip(const char *terms, const unsigned char *in, size_t len, pyx_buf *out, char **repr)
{
    PyGILState_STATE g = PyGILState_Ensure();
    char *err = NULL;
    PyObject *obj = NULL, *r = NULL;
    size_t pos = 1;
    if (testhook_setup(terms) < 0) {
        err = testhook_error("setup");
    } else if (len < 1 || in[0] != 131) {
        err = strdup("decode: no version byte");
    } else if ((obj = pyx_from_etf(&testhook_types, in, len, &pos)) == NULL) {
        err = testhook_error("decode");
    } else if (pos != len) {
        err = strdup("decode: trailing bytes");
    } else if (repr != NULL && (r = PyObject_Repr(obj)) == NULL) {
        err = testhook_error("repr");
    } else if (repr != NULL && (*repr = strdup(PyUnicode_AsUTF8(r))) == NULL) {
        err = strdup("repr: out of memory");
    } else if (pyx_buf_append(out, "\x83", 1) < 0) {
        err = strdup("encode: out of memory");
    } else if (pyx_to_etf(&testhook_types, obj, out) < 0) {
        err = testhook_error("encode");
    }
    Py_XDECREF(r);
    Py_XDECREF(obj);
    PyGILState_Release(g);
    return err;
}

// Evaluates the expression src and encodes the result (versioned).
static char *testhook_from_python(const char *terms, const char *src, pyx_buf *out)
{
    PyGILState_STATE g = PyGILState_Ensure();
    char *err = NULL;
    PyObject *locals = NULL, *obj = NULL;
    if (testhook_setup(terms) < 0) {
        err = testhook_error("setup");
    } else if ((locals = PyDict_New()) == NULL ||
               (obj = PyRun_String(src, Py_eval_input, testhook_globals, locals)) == NULL) {
        err = testhook_error("eval");
    } else if (pyx_buf_append(out, "\x83", 1) < 0) {
        err = strdup("encode: out of memory");
    } else if (pyx_to_etf(&testhook_types, obj, out) < 0) {
        err = testhook_error("encode");
    }
    Py_XDECREF(obj);
    Py_XDECREF(locals);
    PyGILState_Release(g);
    return err;
}

static Py_ssize_t testhook_blocks(void)
{
    PyObject *n = PyObject_CallNoArgs(PySys_GetObject("getallocatedblocks"));
    Py_ssize_t v = n ? PyLong_AsSsize_t(n) : -1;
    Py_XDECREF(n);
    return v;
}

// One round for testhook_leaks: decodes in (versioned, if len > 0) and
// encodes the result, and encodes value (if not NULL), errors included.
static void testhook_leak_round(const unsigned char *in, size_t len, PyObject *value)
{
    pyx_buf out = {0};
    if (len > 0) {
        size_t pos = 1;
        PyObject *obj = pyx_from_etf(&testhook_types, in, len, &pos);
        if (obj != NULL && pyx_to_etf(&testhook_types, obj, &out) < 0)
            PyErr_Clear();
        Py_XDECREF(obj);
        PyErr_Clear();
    }
    if (value != NULL && pyx_to_etf(&testhook_types, value, &out) < 0)
        PyErr_Clear();
    pyx_buf_free(&out);
}

// Runs rounds rounds of testhook_leak_round to warm caches and free
// lists up, then three batches of rounds rounds; *growth is the least
// growth in the number of memory blocks Python has allocated over a
// batch. A leak of one object a round shows in every batch; caches
// filling up do not.
static char *testhook_leaks(const char *terms, const unsigned char *in, size_t len, const char *src, int rounds,
                            Py_ssize_t *growth)
{
    PyGILState_STATE g = PyGILState_Ensure();
    char *err = NULL;
    PyObject *value = NULL;
    if (testhook_setup(terms) < 0) {
        err = testhook_error("setup");
        goto done;
    }
    if (*src && (value = PyRun_String(src, Py_eval_input, testhook_globals, testhook_globals)) == NULL) {
        err = testhook_error("eval");
        goto done;
    }
    for (int i = 0; i < rounds; i++)
        testhook_leak_round(in, len, value);
    for (int batch = 0; batch < 3; batch++) {
        Py_ssize_t before = testhook_blocks();
        for (int i = 0; i < rounds; i++)
            testhook_leak_round(in, len, value);
        Py_ssize_t d = testhook_blocks() - before;
        if (batch == 0 || d < *growth)
            *growth = d;
    }
done:
    Py_XDECREF(value);
    PyGILState_Release(g);
    return err;
}
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

var (
	convertOnce sync.Once
	termsC      *C.char // TermsPy, never freed
)

// convertStart makes sure a main interpreter exists, without the GIL held.
func convertStart() {
	convertOnce.Do(func() {
		termsC = C.CString(TermsPy)
		C.testhook_init()
	})
}

// convertBytes passes in to C for the duration of a call.
func convertBytes(in []byte) (*C.uchar, C.size_t) {
	if len(in) == 0 {
		return nil, 0
	}
	return (*C.uchar)(unsafe.Pointer(&in[0])), C.size_t(len(in))
}

// convertTake turns a malloc'd C error into a Go error and frees it.
func convertTake(cerr *C.char) error {
	if cerr == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(cerr))
	return errors.New(C.GoString(cerr))
}

// convertRoundTrip decodes the versioned ETF in with pyx_from_etf, takes
// repr() of the object, and encodes it back with pyx_to_etf (versioned).
// An error names the stage that failed: "decode: ValueError: ...".
func convertRoundTrip(in []byte) (out []byte, pyRepr string, err error) {
	convertStart()
	var buf C.pyx_buf
	defer C.pyx_buf_free(&buf)
	var repr *C.char
	p, n := convertBytes(in)
	err = convertTake(C.testhook_round_trip(termsC, p, n, &buf, &repr))
	if repr != nil {
		pyRepr = C.GoString(repr)
		C.free(unsafe.Pointer(repr))
	}
	if err != nil {
		return nil, pyRepr, err
	}
	return C.GoBytes(unsafe.Pointer(buf.data), C.int(buf.len)), pyRepr, nil
}

// convertFromPython evaluates the Python expression src (Pid, Ref,
// Opaque, Atom and erlang.* are in scope) and encodes its value with
// pyx_to_etf (versioned).
func convertFromPython(src string) (out []byte, err error) {
	convertStart()
	var buf C.pyx_buf
	defer C.pyx_buf_free(&buf)
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	if err = convertTake(C.testhook_from_python(termsC, csrc, &buf)); err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(buf.data), C.int(buf.len)), nil
}

// convertLeaks converts in (versioned ETF, may be nil) back and forth and
// encodes the value of src (may be ""), errors included, in batches of
// rounds times, and returns the least growth in Python's allocated
// memory blocks over a batch (see testhook_leaks).
func convertLeaks(in []byte, src string, rounds int) (growth int, err error) {
	convertStart()
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	p, n := convertBytes(in)
	var g C.Py_ssize_t
	err = convertTake(C.testhook_leaks(termsC, p, n, csrc, C.int(rounds), &g))
	return int(g), err
}
