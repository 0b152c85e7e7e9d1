/* env.c: process-bound environments (env.h). The table is a dict from the
 * pid's bytes to the environment; the last one used is kept aside, so a
 * process making request after request costs a memcmp, not a lookup. */
#include "env.h"

#include <string.h>

/* Whether key (bytes) holds pid[0..len). */
static int same(PyObject *key, const void *pid, size_t len)
{
    return key != NULL && (size_t)PyBytes_GET_SIZE(key) == len && memcmp(PyBytes_AS_STRING(key), pid, len) == 0;
}

PyObject *pyx_env_for(pyx_ctx *c, const void *pid, size_t len, int *created)
{
    if (same(c->env_key, pid, len))
        return c->env_last;
    if (c->envs == NULL && (c->envs = PyDict_New()) == NULL)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize(pid, (Py_ssize_t)len); /* owned */
    if (key == NULL)
        return NULL;
    PyObject *env = PyDict_GetItemWithError(c->envs, key); /* borrowed */
    if (env == NULL) {
        /* a new one, from the context's __main__ as it is now */
        if (PyErr_Occurred() || (env = PyDict_Copy(c->globals)) == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        int rc = PyDict_SetItem(c->envs, key, env);
        Py_DECREF(env); /* the table holds it */
        if (rc < 0) {
            Py_DECREF(key);
            return NULL;
        }
        *created = 1;
    }
    Py_XSETREF(c->env_key, key);
    Py_INCREF(env);
    Py_XSETREF(c->env_last, env);
    return env;
}

/* Releases the refs held by the process whose pid is key (bytes, may be
 * NULL). */
static void drop_refs(pyx_ctx *c, PyObject *key)
{
    if (key == NULL || c->ref_owners == NULL)
        return;
    PyObject *held = PyDict_GetItemWithError(c->ref_owners, key); /* borrowed */
    if (held == NULL)
        return;
    Py_INCREF(held);
    (void)PyDict_DelItem(c->ref_owners, key);
    PyObject *it = PyObject_GetIter(held), *n; /* owned */
    while (it != NULL && (n = PyIter_Next(it)) != NULL) {
        if (PyDict_DelItem(c->refs, n) < 0)
            PyErr_Clear();
        Py_DECREF(n);
    }
    Py_XDECREF(it);
    Py_DECREF(held);
}

long long pyx_ref_new(pyx_ctx *c, PyObject *obj)
{
    if ((c->refs == NULL && (c->refs = PyDict_New()) == NULL) ||
        (c->ref_owners == NULL && (c->ref_owners = PyDict_New()) == NULL))
        return -1;
    long long n = ++c->ref_next;
    PyObject *key = PyLong_FromLongLong(n); /* owned */
    /* the object and its holder (or None), so a release finds its set */
    PyObject *entry = PyTuple_Pack(2, obj, c->env_pid != NULL ? c->env_pid : Py_None); /* owned */
    int rc = key != NULL && entry != NULL ? PyDict_SetItem(c->refs, key, entry) : -1;
    Py_XDECREF(entry);
    if (rc < 0) {
        Py_XDECREF(key);
        return -1;
    }
    if (c->env_pid != NULL) { /* held by that process: released when it exits */
        PyObject *held = PyDict_GetItemWithError(c->ref_owners, c->env_pid); /* borrowed */
        if (held == NULL && !PyErr_Occurred()) {
            held = PySet_New(NULL);
            if (held != NULL && PyDict_SetItem(c->ref_owners, c->env_pid, held) < 0)
                Py_CLEAR(held);
            Py_XDECREF(held); /* the table holds it */
        }
        if (held == NULL || PySet_Add(held, key) < 0) {
            (void)PyDict_DelItem(c->refs, key);
            Py_DECREF(key);
            return -1;
        }
    }
    Py_DECREF(key);
    return n;
}

/* The (object, holder) entry of ref n (borrowed), or NULL with a KeyError. */
static PyObject *ref_entry(pyx_ctx *c, PyObject *key, long long n)
{
    PyObject *entry = c->refs != NULL ? PyDict_GetItemWithError(c->refs, key) : NULL; /* borrowed */
    if (entry == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_KeyError, "object reference %lld was released (py:release/1, or its process exited)", n);
    return entry;
}

PyObject *pyx_ref_get(pyx_ctx *c, long long n)
{
    PyObject *key = PyLong_FromLongLong(n); /* owned */
    PyObject *entry = key != NULL ? ref_entry(c, key, n) : NULL; /* borrowed */
    Py_XDECREF(key);
    return entry != NULL ? PyTuple_GET_ITEM(entry, 0) : NULL;
}

int pyx_ref_release(pyx_ctx *c, long long n)
{
    PyObject *key = PyLong_FromLongLong(n); /* owned */
    PyObject *entry = key != NULL ? ref_entry(c, key, n) : NULL; /* borrowed */
    int rc = -1;
    if (entry != NULL) {
        /* out of its holder's set too, so a process that makes and releases
         * refs for its whole life holds no number for each */
        PyObject *held = c->ref_owners != NULL ? PyDict_GetItemWithError(c->ref_owners, PyTuple_GET_ITEM(entry, 1))
                                               : NULL; /* borrowed */
        if (held != NULL && PySet_Discard(held, key) < 0)
            PyErr_Clear();
        PyErr_Clear(); /* no holder (None), or none in the table */
        rc = PyDict_DelItem(c->refs, key); /* entry goes with it */
    }
    Py_XDECREF(key);
    return rc;
}

void pyx_env_drop(pyx_ctx *c, const void *pid, size_t len)
{
    PyEval_RestoreThread(c->ex->ts); /* GIL held from here ... */
    if (same(c->env_key, pid, len)) {
        Py_CLEAR(c->env_key);
        Py_CLEAR(c->env_last);
    }
    PyObject *key = PyBytes_FromStringAndSize(pid, (Py_ssize_t)len); /* owned */
    if (key != NULL && c->envs != NULL && PyDict_DelItem(c->envs, key) < 0)
        PyErr_Clear(); /* none here */
    drop_refs(c, key);
    Py_XDECREF(key);
    PyErr_Clear();
    PyEval_SaveThread(); /* ... to here */
}

Py_ssize_t pyx_env_count(pyx_ctx *c) { return c->envs != NULL ? PyDict_GET_SIZE(c->envs) : 0; }

void pyx_env_release(pyx_ctx *c)
{
    Py_CLEAR(c->refs);
    Py_CLEAR(c->ref_owners);
    Py_CLEAR(c->alive_last);
    Py_CLEAR(c->env_key);
    Py_CLEAR(c->env_last);
    Py_CLEAR(c->envs);
}
