/* wait.h: the one wait of the Python functions that block (time.sleep,
 * erlang.sleep, threading.Lock and so Condition.wait; sleep.h, lock.h):
 * on a condition variable that a cancel of the request running on the
 * thread signals (queue.c), so that a caller's timeout stops the wait at
 * once and not at its end. No GIL involved (the callers release it);
 * nothing here calls into Go. */
#ifndef PYX_WAIT_H
#define PYX_WAIT_H

#include "queue.h"

/* pyx_wait's results. */
enum { PYX_WAIT_READY = 0, PYX_WAIT_TIMEOUT = 1, PYX_WAIT_CANCELLED = 2 };

/* CLOCK_MONOTONIC in nanoseconds. */
long long pyx_now_ns(void);
/* A mutex and a condition variable on CLOCK_MONOTONIC. 0 or -1. */
int pyx_wake_init(pyx_wake *w);
void pyx_wake_destroy(pyx_wake *w);
/* Waits on w until ready(arg) (called with w->mu held; NULL: never
 * ready), or deadline_ns passes (CLOCK_MONOTONIC; -1: no deadline), or,
 * if cancellable (pyx_wait_begin, run.h, said so), the request running on
 * this thread or its chain is cancelled. w->mu not held on entry;
 * whoever makes ready true signals w->cv under w->mu. Ready wins over a
 * cancel that comes at the same time (a lock taken is not lost). */
int pyx_wait(pyx_wake *w, long long deadline_ns, int (*ready)(void *), void *arg, int cancellable);
#endif
