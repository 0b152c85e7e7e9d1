/* sleep.c: time.sleep and erlang.sleep's wait (sleep.h). */
#include "sleep.h"

#include <limits.h>
#include <math.h>
#include <sched.h>

#include "run.h"
#include "wait.h"

#define NS 1000000000LL

/* CPython's message (3.11's wording). */
static int overflow(void)
{
    PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
    return -1;
}

int pyx_seconds_ns(PyObject *obj, long long *ns)
{
    if (PyFloat_Check(obj)) {
        double d = PyFloat_AsDouble(obj);
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
            return -1;
        }
        d *= 1e9;
        d = d >= 0 ? ceil(d) : floor(d); /* away from zero, as _PyTime_ROUND_TIMEOUT */
        if (!(d >= (double)LLONG_MIN && d < (double)LLONG_MAX))
            return overflow();
        *ns = (long long)d;
        return 0;
    }
    long long s = PyLong_AsLongLong(obj); /* TypeError for what has no __index__ */
    if (s == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            return overflow();
        }
        return -1;
    }
    if (s > LLONG_MAX / NS || s < LLONG_MIN / NS)
        return overflow();
    *ns = s * NS;
    return 0;
}

PyObject *pyx_sleep_ns(long long ns)
{
    int cancellable = pyx_wait_begin();
    if (cancellable < 0)
        return NULL;
    pyx_wake w;
    if (pyx_wake_init(&w) < 0)
        return PyErr_NoMemory();
    long long now = pyx_now_ns();
    long long deadline = ns > LLONG_MAX - now ? -1 : now + ns; /* past 292 years: forever */
    int rc;
    Py_BEGIN_ALLOW_THREADS /* even for 0, which lets the other threads run */
    rc = pyx_wait(&w, deadline, NULL, NULL, cancellable);
    if (ns == 0 && rc != PYX_WAIT_CANCELLED)
        sched_yield(); /* as CPython 3.14's: a 0 s clock_nanosleep takes 50-80 us */
    Py_END_ALLOW_THREADS
    pyx_wake_destroy(&w);
    if (rc == PYX_WAIT_CANCELLED) {
        pyx_interrupted();
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *time_sleep(PyObject *self, PyObject *arg)
{
    (void)self;
    long long ns;
    if (pyx_seconds_ns(arg, &ns) < 0)
        return NULL;
    if (ns < 0) {
        PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
        return NULL;
    }
    return pyx_sleep_ns(ns);
}

/* Read only: shared by the functions of every interpreter. */
static PyMethodDef time_sleep_def = {
    "sleep", time_sleep, METH_O,
    "sleep(seconds)\n\nDelay execution for a given number of seconds.  The argument may be\n"
    "a floating point number for subsecond precision.\n\n"
    "(pyport) A cancel of the request that sleeps, as a caller's timeout, ends it\n"
    "with KeyboardInterrupt."};

PyObject *pyx_time_sleep_new(void)
{
    PyObject *name = PyUnicode_FromString("time"); /* owned */
    PyObject *fn = name ? PyCFunction_NewEx(&time_sleep_def, NULL, name) : NULL;
    Py_XDECREF(name);
    return fn;
}
