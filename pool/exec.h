/* exec.h: the executor loop (exec.c), and erlang.call's wait for the
 * BEAM's answer. */
#ifndef PYX_EXEC_H
#define PYX_EXEC_H
#include "buf.h"
#include "output.h"
#include "queue.h"

/* A result of this many bytes or more, for a request that came in a slot,
 * goes back through the slot (docs/PROTOCOL.md; pool.SlotMin). */
#define PYX_SLOT_MIN (64 * 1024)

/* Runs q's jobs on the calling thread (the executor's) until q is closed
 * and drained. Holds no GIL between jobs. */
void pyx_exec_loop(pyx_queue *q, long long spin_ns, long long busy_spin_ns);

/* erlang.call, without the GIL: sends the frame id + body and waits for
 * the BEAM's answer to callback cb. On an executor's thread within a
 * request (current.h) it runs meanwhile the requests of that request's
 * chain that come; on any other thread, nothing, and the frame goes to
 * out. 0 with the answer (a versioned term) appended to answer; -1 when
 * the request was cancelled (or the executor closed) first, -2 out of
 * memory. */
int pyx_exec_callback(pyx_out *out, long long cb, const pyx_buf *id, const pyx_buf *body, pyx_buf *answer);

/* On an executor's thread waiting within request outer (no GIL held):
 * runs request j, which pyx_queue_pop_for or pyx_queue_pop_any took for
 * it, on top of outer, then makes outer the running one again; frees j. */
void pyx_exec_run_on_top(pyx_job *outer, pyx_job *j);

/* The BEAM's answer to callback cb: to the thread waiting for it, else to
 * q, for its executor (pyx_queue_cb_reply). Any thread. */
int pyx_callback_reply(pyx_queue *q, long long cb, const void *payload, size_t plen);
#endif
