/* stream.c: the C side of streams (stream.h): the globals of the request
 * running (the caller's environment, which py:stream looks its function
 * up in, as py:call does) and the hand-over of a stream to its relay. The GIL is
 * held in every function here (they are called from Python). */
#include "stream.h"

#include "current.h"
#include "pysrc.h"

/* _stream_globals(): the globals of the request running on this thread
 * (its process's environment, or the context's __main__); a new reference. */
static PyObject *stream_globals(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pyx_ctx *c = pyx_current_ctx();
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_stream_globals: no request runs on this thread");
        return NULL;
    }
    return Py_NewRef(c->env != NULL ? c->env : c->globals);
}

/* _stream_adopt(n): ref n (env.h) is held from now on by the process of
 * the request running (its environment's pid; the context's __main__: by
 * no one), no longer by the one that made it, so its stream ends with the
 * process that steps it (py_stream's relay), not with the one that opened
 * it. KeyError if it is gone. c->refs maps n -> (object, holder),
 * c->ref_owners holder -> set of n (env.c). */
static PyObject *stream_adopt(PyObject *module, PyObject *arg)
{
    (void)module;
    pyx_ctx *c = pyx_current_ctx();
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_stream_adopt: no request runs on this thread");
        return NULL;
    }
    PyObject *entry = c->refs != NULL ? PyDict_GetItemWithError(c->refs, arg) : NULL; /* borrowed */
    if (entry == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_KeyError, "stream %R was closed (its process exited)", arg);
        return NULL;
    }
    PyObject *holder = c->env_pid != NULL ? c->env_pid : Py_None; /* borrowed */
    PyObject *old = PyTuple_GET_ITEM(entry, 1);                   /* borrowed */
    if (old != Py_None) {
        PyObject *held = PyDict_GetItemWithError(c->ref_owners, old); /* borrowed */
        if (held != NULL && PySet_Discard(held, arg) < 0)
            return NULL;
        if (held == NULL && PyErr_Occurred())
            return NULL;
    }
    PyObject *fresh = PyTuple_Pack(2, PyTuple_GET_ITEM(entry, 0), holder); /* owned */
    if (fresh == NULL)
        return NULL;
    int rc = PyDict_SetItem(c->refs, arg, fresh); /* the old entry goes */
    Py_DECREF(fresh);
    if (rc < 0)
        return NULL;
    if (holder != Py_None) {
        PyObject *held = PyDict_GetItemWithError(c->ref_owners, holder); /* borrowed */
        if (held == NULL) {
            if (PyErr_Occurred() || (held = PySet_New(NULL)) == NULL)
                return NULL;
            rc = PyDict_SetItem(c->ref_owners, holder, held);
            Py_DECREF(held); /* the table holds it */
            if (rc < 0)
                return NULL;
        }
        if (PySet_Add(held, arg) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef stream_methods[] = {
    {"_stream_adopt", stream_adopt, METH_O, "_stream_adopt(n): the running request's process holds ref n now"},
    {"_stream_globals", stream_globals, METH_NOARGS, "_stream_globals(): the running request's globals"},
    {NULL, NULL, 0, NULL},
};

int pyx_stream_add_functions(PyObject *module)
{
    if (PyModule_AddFunctions(module, stream_methods) < 0)
        return -1;
    return pyx_py_run(PYX_PY_STREAM, PyModule_GetDict(module)); /* dict borrowed */
}
