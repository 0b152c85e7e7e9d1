/* erlmod_state.c: erlang.state_* (erlmod_state.h), the store seen from
 * Python. The GIL is held on entry and exit of each function; the store's
 * mutexes are taken inside its calls (store.h), never across Python code.
 * Nothing here calls into Go. */
#include "erlmod_state.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "modtypes.h"
#include "store.h"
/* The bytes of a str (its UTF-8, cached by the str) or bytes key, valid
 * while key lives. 0, or -1 with TypeError (or UnicodeEncodeError). */
static int state_key(PyObject *key, const char **k, Py_ssize_t *n)
{
    if (PyUnicode_Check(key)) {
        *k = PyUnicode_AsUTF8AndSize(key, n);
        return *k == NULL ? -1 : 0;
    }
    if (PyBytes_Check(key)) {
        *k = PyBytes_AS_STRING(key);
        *n = PyBytes_GET_SIZE(key);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "erlang.state: a key must be str or bytes, not %.200s", Py_TYPE(key)->tp_name);
    return -1;
}

static PyObject *state_error(int rc, PyObject *key)
{
    switch (rc) {
    case PYX_STATE_NOT_FOUND:
        PyErr_SetObject(PyExc_KeyError, key);
        break;
    case PYX_STATE_NOT_INTEGER:
        PyErr_Format(PyExc_TypeError, "erlang.state: the value of %R is not an integer", key);
        break;
    case PYX_STATE_OVERFLOW:
        PyErr_Format(PyExc_OverflowError, "erlang.state: the value of %R would not fit 64 bits", key);
        break;
    default:
        PyErr_NoMemory();
    }
    return NULL;
}

/* state_set(key, value): value becomes a term (an int of 64 bits stays an
 * int, without encoding). */
static PyObject *state_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "state_set(key, value) takes 2 arguments");
        return NULL;
    }
    if (state_key(args[0], &k, &kn) < 0)
        return NULL;
    int rc;
    if (PyLong_CheckExact(args[1])) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(args[1], &overflow);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (!overflow) {
            rc = pyx_state_put_int(k, (size_t)kn, n);
            return rc == PYX_STATE_OK ? Py_NewRef(Py_None) : state_error(rc, args[0]);
        }
    }
    pyx_module_types st;
    pyx_buf b = {0}; /* owned until adopted by the value */
    if (pyx_module_types_get(module, &st) < 0 || pyx_to_etf(&st.t, args[1], &b) < 0) {
        pyx_module_types_put(&st);
        pyx_buf_free(&b);
        return NULL;
    }
    pyx_module_types_put(&st);
    rc = pyx_state_put(k, (size_t)kn, pyx_state_val_adopt(b.data, b.len));
    return rc == PYX_STATE_OK ? Py_NewRef(Py_None) : state_error(rc, args[0]);
}

/* state_get(key): the value, or KeyError. */
static PyObject *state_get(PyObject *module, PyObject *key)
{
    const char *k;
    Py_ssize_t kn;
    pyx_state_val *v = NULL; /* a reference, released below */
    long long n;
    if (state_key(key, &k, &kn) < 0)
        return NULL;
    int rc = pyx_state_get(k, (size_t)kn, &v, &n);
    if (rc != PYX_STATE_OK)
        return state_error(rc, key);
    if (v == NULL)
        return PyLong_FromLongLong(n);
    pyx_module_types st;
    PyObject *res = NULL;
    if (pyx_module_types_get(module, &st) == 0) {
        size_t pos = 0;
        res = pyx_from_etf(&st.t, v->data, v->len, &pos);
    }
    pyx_module_types_put(&st);
    pyx_state_val_release(v);
    return res;
}

/* state_delete(key): removes key; a missing key is no error. */
static PyObject *state_delete(PyObject *module, PyObject *key)
{
    (void)module;
    const char *k;
    Py_ssize_t kn;
    if (state_key(key, &k, &kn) < 0)
        return NULL;
    (void)pyx_state_delete(k, (size_t)kn);
    Py_RETURN_NONE;
}

/* state_keys(): the keys, in no order: str, or bytes for a key that is
 * not UTF-8. */
static PyObject *state_keys(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    unsigned char *buf = NULL; /* malloc'd, freed below */
    size_t len = 0, pos = 0;
    long count = pyx_state_keys(&buf, &len);
    if (count < 0)
        return PyErr_NoMemory();
    PyObject *list = PyList_New(count);
    for (long i = 0; list != NULL && i < count; i++) {
        uint32_t n;
        memcpy(&n, buf + pos, sizeof n);
        const char *k = (const char *)buf + pos + sizeof n;
        pos += sizeof n + n;
        PyObject *key = PyUnicode_DecodeUTF8(k, n, NULL);
        if (key == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            key = PyBytes_FromStringAndSize(k, n);
        }
        if (key == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, key); /* steals key */
    }
    free(buf);
    return list;
}

/* incr/decr: (key, n=1) -> the new value. */
static PyObject *state_add(PyObject *const *args, Py_ssize_t nargs, int sign, const char *name)
{
    const char *k;
    Py_ssize_t kn;
    long long n = 1, result;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s(key, n=1) takes 1 or 2 arguments", name);
        return NULL;
    }
    if (state_key(args[0], &k, &kn) < 0)
        return NULL;
    if (nargs == 2) {
        if (!PyLong_Check(args[1])) {
            PyErr_Format(PyExc_TypeError, "%s: n must be an int, not %.200s", name, Py_TYPE(args[1])->tp_name);
            return NULL;
        }
        n = PyLong_AsLongLong(args[1]); /* OverflowError past 64 bits */
        if (n == -1 && PyErr_Occurred())
            return NULL;
    }
    if (sign < 0) {
        if (n == LLONG_MIN)
            return state_error(PYX_STATE_OVERFLOW, args[0]);
        n = -n;
    }
    int rc = pyx_state_incr(k, (size_t)kn, n, &result);
    return rc == PYX_STATE_OK ? PyLong_FromLongLong(result) : state_error(rc, args[0]);
}

static PyObject *state_incr(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return state_add(args, nargs, 1, "state_incr");
}

static PyObject *state_decr(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return state_add(args, nargs, -1, "state_decr");
}

static PyMethodDef state_methods[] = {
    {"state_set", (PyCFunction)(void (*)(void))state_set, METH_FASTCALL,
     "state_set(key, value): stores a term under key, shared by every context and Erlang"},
    {"state_get", state_get, METH_O, "state_get(key): the value under key; KeyError if none"},
    {"state_delete", state_delete, METH_O, "state_delete(key): removes key"},
    {"state_keys", state_keys, METH_NOARGS, "state_keys(): the list of keys"},
    {"state_incr", (PyCFunction)(void (*)(void))state_incr, METH_FASTCALL,
     "state_incr(key, n=1): adds n to the integer under key (0 if none), atomically; returns it"},
    {"state_decr", (PyCFunction)(void (*)(void))state_decr, METH_FASTCALL,
     "state_decr(key, n=1): subtracts n from the integer under key (0 if none), atomically; returns it"},
    {NULL, NULL, 0, NULL},
};

int pyx_state_add_functions(PyObject *module) { return PyModule_AddFunctions(module, state_methods); }
