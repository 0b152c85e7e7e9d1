/* lock.c: the cancellable lock (lock.h): a flag under a mutex, waited for
 * with pyx_wait (wait.h) without the GIL. */
#include "lock.h"

#include <limits.h>
#include <stddef.h>

#include <structmember.h>

#include "run.h"
#include "sleep.h"
#include "wait.h"

#define NS 1000000000LL

typedef struct {
    PyObject_HEAD
    pyx_wake w; /* w.mu guards locked */
    int locked;
    int ok;              /* w is initialised */
    PyObject *weakrefs;  /* as _thread.lock, it can be weakly referenced */
} lockobject;

/* pyx_wait's ready: takes the lock if it is free. w.mu held. */
static int take(void *arg)
{
    lockobject *l = arg;
    if (l->locked)
        return 0;
    l->locked = 1;
    return 1;
}

static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":lock", kwlist))
        return NULL;
    lockobject *l = (lockobject *)type->tp_alloc(type, 0); /* zeroed; holds a reference to type */
    if (l == NULL)
        return NULL;
    if (pyx_wake_init(&l->w) < 0) {
        Py_DECREF(l);
        return PyErr_NoMemory();
    }
    l->ok = 1;
    return (PyObject *)l;
}

static void lock_dealloc(PyObject *self)
{
    lockobject *l = (lockobject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    if (l->weakrefs != NULL)
        PyObject_ClearWeakRefs(self);
    if (l->ok) /* nobody waits: a waiter holds a reference */
        pyx_wake_destroy(&l->w);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The arguments of acquire(blocking=True, timeout=-1), parsed by hand: the
 * call without any is the common one, and PyArg_Parse* would cost it as
 * much as the lock. 0, or -1 with an exception set. */
static int acquire_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **blocking,
                        PyObject **timeout)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 arguments (%zd given)", nargs + nkw);
        return -1;
    }
    *blocking = nargs > 0 ? args[0] : NULL;
    *timeout = nargs > 1 ? args[1] : NULL;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot = PyUnicode_CompareWithASCIIString(name, "blocking") == 0  ? blocking
                          : PyUnicode_CompareWithASCIIString(name, "timeout") == 0 ? timeout
                                                                                   : NULL;
        if (slot == NULL) {
            PyErr_Format(PyExc_TypeError, "acquire() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (*slot != NULL) {
            PyErr_Format(PyExc_TypeError, "argument for acquire() given by name ('%U') and position", name);
            return -1;
        }
        *slot = args[nargs + i];
    }
    return 0;
}

/* acquire(blocking=True, timeout=-1), as _thread.lock's. */
static PyObject *lock_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    lockobject *l = (lockobject *)self;
    PyObject *blocking_obj = NULL, *timeout_obj = NULL;
    int blocking = 1;
    long long timeout = -NS; /* -1 s: none given, as CPython has it */
    if (nargs > 0 || kwnames != NULL) {
        if (acquire_args(args, nargs, kwnames, &blocking_obj, &timeout_obj) < 0)
            return NULL;
#if PY_VERSION_HEX >= 0x030C0000
        if (blocking_obj != NULL && (blocking = PyObject_IsTrue(blocking_obj)) < 0) /* "p" */
            return NULL;
#else
        if (blocking_obj != NULL && !PyArg_Parse(blocking_obj, "i", &blocking)) /* 3.11: an int */
            return NULL;
#endif
        if (timeout_obj != NULL && pyx_seconds_ns(timeout_obj, &timeout) < 0)
            return NULL;
        if (!blocking && timeout != -NS) {
            PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
            return NULL;
        }
        if (timeout < 0 && timeout != -NS) {
#if PY_VERSION_HEX >= 0x030D0000
            PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
#else
            PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
#endif
            return NULL;
        }
    }
    pthread_mutex_lock(&l->w.mu); /* first without dropping the GIL */
    int got = take(l);
    pthread_mutex_unlock(&l->w.mu);
    if (got || !blocking || timeout == 0)
        return PyBool_FromLong(got);
    long long now = pyx_now_ns();
    if (timeout > LLONG_MAX - now) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return NULL;
    }
    int cancellable = pyx_wait_begin();
    if (cancellable < 0)
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pyx_wait(&l->w, timeout < 0 ? -1 : now + timeout, take, l, cancellable);
    Py_END_ALLOW_THREADS
    if (rc == PYX_WAIT_CANCELLED) {
        pyx_interrupted();
        return NULL;
    }
    return PyBool_FromLong(rc == PYX_WAIT_READY);
}

static PyObject *lock_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    lockobject *l = (lockobject *)self;
    pthread_mutex_lock(&l->w.mu);
    int was = l->locked;
    l->locked = 0;
    pthread_mutex_unlock(&l->w.mu);
    if (was) /* after the unlock: the waiter woken need not wait for it; self is alive */
        pthread_cond_signal(&l->w.cv);
    else {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *lock_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return lock_acquire(self, NULL, 0, NULL);
}

static PyObject *lock_exit(PyObject *self, PyObject *args)
{
    (void)args;
    return lock_release(self, NULL);
}

static int is_locked(lockobject *l)
{
    pthread_mutex_lock(&l->w.mu);
    int locked = l->locked;
    pthread_mutex_unlock(&l->w.mu);
    return locked;
}

static PyObject *lock_locked(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(is_locked((lockobject *)self));
}

/* After os.fork, in the child, where only this thread runs. */
static PyObject *lock_at_fork_reinit(PyObject *self, PyObject *unused)
{
    (void)unused;
    lockobject *l = (lockobject *)self;
    pyx_wake w;
    if (pyx_wake_init(&w) < 0)
        return PyErr_NoMemory();
    l->w = w; /* the old mutex may be held by a thread that is gone: dropped */
    l->locked = 0;
    Py_RETURN_NONE;
}

static PyObject *lock_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", is_locked((lockobject *)self) ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool; a cancel of the request ends a wait with KeyboardInterrupt"},
    {"release", lock_release, METH_NOARGS, "release()"},
    {"locked", lock_locked, METH_NOARGS, "locked() -> bool"},
    {"__enter__", lock_enter, METH_NOARGS, "acquire()"},
    {"__exit__", lock_exit, METH_VARARGS, "release()"},
    {"_at_fork_reinit", lock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef lock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(lockobject, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot lock_slots[] = {
    {Py_tp_members, lock_members},
    {Py_tp_new, lock_new},
    {Py_tp_dealloc, lock_dealloc},
    {Py_tp_repr, lock_repr},
    {Py_tp_methods, lock_methods},
    {Py_tp_doc, "A lock, as _thread.lock, whose wait a cancel of the request ends (pyport)."},
    {0, NULL},
};

static PyType_Spec lock_spec = {"erlang.CancellableLock", sizeof(lockobject), 0, Py_TPFLAGS_DEFAULT, lock_slots};

PyObject *pyx_lock_type_new(void) { return PyType_FromSpec(&lock_spec); }
