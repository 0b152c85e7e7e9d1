/* exec.c: an executor's loop, all in C: take a job, run it, write its
 * reply. A request never enters Go on this thread, so the Go scheduler is
 * not involved in it; only set-up jobs and tracebacks call back into Go. */
#include "exec.h"

#include "_cgo_export.h"

/* Runs one request and writes its reply. No GIL held on entry or exit. */
static void run_request(pyx_job *j)
{
    pyx_buf res = {0}, tb = {0};
    pyx_run(j->ctx, j->seq, j->op, j->data + j->reply_len, j->payload_len, &res, &tb);
    if (tb.len > 0 && j->go != 0)
        pyxTraceback(j->go, (char *)tb.data, tb.len); /* into Go: errors only */
    /* A request cancelled while it ran has nobody waiting for it. */
    if (!__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
        pyx_out_send(j->out, j->data, j->reply_len, res.data, res.len);
    pyx_buf_free(&res);
    pyx_buf_free(&tb);
}

void pyx_exec_loop(pyx_queue *q, long long spin_ns)
{
    pyx_job *j;
    while ((j = pyx_queue_pop(q, spin_ns)) != NULL) {
        if (j->kind == PYX_JOB_GO)
            pyxRunGo(j->go); /* into Go: contexts made and freed */
        else if (!__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
            run_request(j);
        pyx_queue_done(q);
        free(j);
    }
}
