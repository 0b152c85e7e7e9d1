/* lock.h: a lock whose blocking acquire a cancel of the request waiting
 * ends with KeyboardInterrupt (lock.c), with _thread.lock's methods.
 * boot.py makes it threading.Lock and threading's _allocate_lock, the
 * lock Condition.wait waits on: Lock.acquire and Event.wait,
 * Condition.wait, queue.Queue's get and put, Semaphore, Barrier and
 * concurrent.futures' waits all wait there. GIL held; nothing here calls
 * into Go. */
#ifndef PYX_LOCK_H
#define PYX_LOCK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The type, new in the current interpreter (a heap type: an own-GIL
 * interpreter may not share one). New reference, or NULL. */
PyObject *pyx_lock_type_new(void);
#endif
