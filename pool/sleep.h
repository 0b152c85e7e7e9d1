/* sleep.h: time.sleep as every interpreter of the sidecar has it (boot.py
 * puts it in the time module), and the sleep of erlang.sleep (sleep.c):
 * both wait with pyx_wait (wait.h), so a cancel of the request ends them.
 * GIL held on entry and exit of each; nothing here calls into Go. */
#ifndef PYX_SLEEP_H
#define PYX_SLEEP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Seconds to nanoseconds as time.sleep and Lock.acquire convert them
 * (CPython's _PyTime_FromSecondsObject, rounded away from zero): a float
 * (NaN: ValueError) or an integer (__index__; else TypeError); too large:
 * OverflowError. 0, or -1 with an exception set. */
int pyx_seconds_ns(PyObject *obj, long long *ns);
/* Sleeps ns >= 0 nanoseconds without the GIL. Returns None (new
 * reference), or NULL with KeyboardInterrupt when the request running on
 * this thread is cancelled first. */
PyObject *pyx_sleep_ns(long long ns);
/* A new time.sleep for the current interpreter: time.sleep's contract
 * (its errors, its precision), and a cancel ends it. New reference. */
PyObject *pyx_time_sleep_new(void);
#endif
