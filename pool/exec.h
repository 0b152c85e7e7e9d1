/* exec.h: the executor loop (exec.c). */
#ifndef PYX_EXEC_H
#define PYX_EXEC_H
#include "queue.h"

/* Runs q's jobs on the calling thread (the executor's) until q is closed
 * and drained. Holds no GIL between jobs. */
void pyx_exec_loop(pyx_queue *q, long long spin_ns);
#endif
