/* pysrc.c: the embedded Python source (pysrc.h), compiled and run in a
 * namespace. */
#include "pysrc.h"

static struct {
    const char *name, *src;
} sources[PYX_PY_COUNT]; /* written before Python starts, then read only */

void pyx_py_set(int which, const char *name, const char *src)
{
    sources[which].name = name;
    sources[which].src = src;
}

int pyx_py_run(int which, PyObject *ns)
{
    if (sources[which].src == NULL) {
        PyErr_Format(PyExc_SystemError, "pyport: Python source %d is missing", which);
        return -1;
    }
    /* As PyRun_String does: code run in ns (and what it defines) finds the
     * builtins there. PyImport_Import looks them up in the globals of the
     * running frame, e.g. erlang.call's while a nested request imports. */
    if (PyDict_GetItemString(ns, "__builtins__") == NULL &&
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0)
        return -1;
    PyObject *code = Py_CompileString(sources[which].src, sources[which].name, Py_file_input); /* owned */
    PyObject *res = code ? PyEval_EvalCode(code, ns, ns) : NULL;                             /* owned */
    Py_XDECREF(code);
    Py_XDECREF(res);
    return res != NULL ? 0 : -1;
}
