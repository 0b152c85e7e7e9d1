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

void pyx_env_drop(pyx_ctx *c, const void *pid, size_t len)
{
    PyEval_RestoreThread(c->ex->ts); /* GIL held from here ... */
    if (same(c->env_key, pid, len)) {
        Py_CLEAR(c->env_key);
        Py_CLEAR(c->env_last);
    }
    if (c->envs != NULL) {
        PyObject *key = PyBytes_FromStringAndSize(pid, (Py_ssize_t)len); /* owned */
        if (key == NULL || PyDict_DelItem(c->envs, key) < 0)
            PyErr_Clear(); /* none here: nothing to do */
        Py_XDECREF(key);
    }
    PyEval_SaveThread(); /* ... to here */
}

Py_ssize_t pyx_env_count(pyx_ctx *c) { return c->envs != NULL ? PyDict_GET_SIZE(c->envs) : 0; }

void pyx_env_release(pyx_ctx *c)
{
    Py_CLEAR(c->env_key);
    Py_CLEAR(c->env_last);
    Py_CLEAR(c->envs);
}
