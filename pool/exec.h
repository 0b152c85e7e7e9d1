/* exec.h: the executor loop (exec.c). */
#ifndef PYX_EXEC_H
#define PYX_EXEC_H
#include "queue.h"

/* A result of this many bytes or more, for a request that came in a slot,
 * goes back through the slot (docs/PROTOCOL.md). */
#define PYX_SLOT_MIN (64 * 1024)

/* Runs q's jobs on the calling thread (the executor's) until q is closed
 * and drained. Holds no GIL between jobs. */
void pyx_exec_loop(pyx_queue *q, long long spin_ns, long long busy_spin_ns);
#endif
