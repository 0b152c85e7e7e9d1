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

/* The request running on the calling thread, if it is an executor's in a
 * request; else NULL. */
pyx_job *pyx_exec_current(void);

/* The term classes a function of the `erlang` module converts with: the
 * running request's context's, else (another Python thread) the module's
 * own, whose four strong references are then in held. With the GIL;
 * pyx_module_types_put releases them (erlmod.c). */
typedef struct {
    pyx_types t;
    PyObject *held[4];
} pyx_module_types;
int pyx_module_types_get(PyObject *module, pyx_module_types *mt);
void pyx_module_types_put(pyx_module_types *mt);

/* The output requests answer on, once one has run; else NULL. Any thread. */
pyx_out *pyx_exec_output(void);

/* erlang.call, on the executor's thread, without the GIL: sends the frame
 * id + body and waits for the BEAM's answer to callback cb, running the
 * requests of outer's chain that come meanwhile. 0 with the answer (a
 * versioned term) appended to answer; -1 when outer was cancelled (or
 * the executor closed) first, -2 out of memory. */
int pyx_exec_callback(pyx_job *outer, long long cb, const pyx_buf *id, const pyx_buf *body, pyx_buf *answer);

/* erlang.call on any other thread, without the GIL: sends id + body to out
 * and waits for the answer to callback cb. 0 with the answer appended, -2
 * out of memory. Nothing runs on this thread meanwhile. */
int pyx_exec_callback_thread(pyx_out *out, long long cb, const pyx_buf *id, const pyx_buf *body, pyx_buf *answer);

/* The BEAM's answer to callback cb: to the thread waiting for it, else to
 * q, for its executor (pyx_queue_cb_reply). Any thread. */
int pyx_callback_reply(pyx_queue *q, long long cb, const void *payload, size_t plen);
#endif
