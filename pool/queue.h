/* queue.h: an executor's bounded queue of jobs. The executor thread waits
 * on it in C (exec.c), so waking it costs one futex wake and not a Go
 * scheduler hand-off to a locked thread (PLATFORM.md: 18-40 us). No GIL
 * involved; nothing here calls into Go. */
#ifndef PYX_QUEUE_H
#define PYX_QUEUE_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "output.h"

typedef struct pyx_ctx pyx_ctx; /* ctx.h: only pointers to it here */

/* pyx_queue_push's results, and of the functions that queue a job. */
enum { PYX_QUEUE_OK = 0, PYX_QUEUE_FULL = -1, PYX_QUEUE_CLOSED = -2, PYX_QUEUE_NOMEM = -3 };

/* Job kinds: a request from the BEAM; a Go func(); the BEAM's answer to an
 * erlang.call made on this executor (seq: the callback's number); the
 * BEAM's word that a process exited (data: its pid, payload_len bytes),
 * whose environment in ctx goes (env.h). */
enum { PYX_JOB_REQUEST = 0, PYX_JOB_GO = 1, PYX_JOB_CB_REPLY = 2, PYX_JOB_DROP_ENV = 3 };
/* The event loop's (loop.h): cancel the task whose reply prefix is data;
 * and the kind of the job that stands for a loop's step (never queued). */
enum { PYX_JOB_LOOP_CANCEL = 4, PYX_JOB_LOOP = 5 };

/* One job, malloc'd in one piece with its bytes; the executor frees it. */
typedef struct {
    int kind;       /* PYX_JOB_REQUEST, PYX_JOB_GO or PYX_JOB_CB_REPLY */
    int op;         /* PYX_CALL, PYX_EVAL or PYX_EXEC */
    int in_file;    /* the payload is in a file: data holds its path, with a NUL */
    int cancelled;  /* atomic: set by pyx_queue_cancel */
    long long cancel_ns; /* under the queue's mu: when pyx_queue_cancel found
                            it running (CLOCK_MONOTONIC ns), for the stuck watchdog */
    long long seq;  /* unique per request, for pyx_interrupt */
    long long chain; /* the request's chain: the seq of the request whose
                        erlang.call led to it, through the BEAM; else its own */
    pyx_ctx *ctx;   /* the request's context */
    long long ctx_id; /* its id, for the stuck watchdog and log packets */
    pyx_out *out;   /* where the reply goes */
    void *below;    /* the pyx_job this one runs on top of (pyx_queue_pop_for) */
    uintptr_t go;   /* PYX_JOB_GO: cgo.Handle of a Go func() */
    size_t reply_len, payload_len;
    size_t caller_off, caller_len; /* the calling process's pid (its ETF,
                             no version byte) in data, for log lines; 0: none */
    unsigned char data[]; /* reply prefix (the caller's id), then payload
                             (or, in_file, the path of the file holding it),
                             then the caller's pid */
} pyx_job;

/* A wait of a thread's that a cancel must end (wait.h): pyx_queue_cancel
 * broadcasts cv under mu when it finds the waiting request's chain. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC (pyx_wake_init) */
} pyx_wake;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pyx_job **items;
    size_t head, n, cap;
    int closed;
    int busy;         /* atomic: pops left that count as under load */
    int selective;    /* under mu: the popper waits for a given job
                         (pyx_queue_pop_for), so every push wakes it */
    pyx_job *running; /* popped and not yet done; only under mu */
    pyx_wake *wake;   /* under mu: where the executor's thread waits in
                         pyx_wait, if it does; NULL else */
    /* The event loops of the executor's contexts (loop.h). */
    void *loops;      /* loop.c's set, NULL until a loop is made; atomic */
    int loop_fd;      /* an eventfd the loops' selects watch, -1 until then */
    int in_loop;      /* under mu: the executor is in a loop's select */
    int loop_woken;   /* under mu: loop_fd was written since it went in */
    int loop_active;  /* atomic: a loop has work, so the executor steps it:
                         bit 1 it waits (timers, readers), bit 2 handles ready */
} pyx_queue;

pyx_queue *pyx_queue_new(size_t cap);
/* Takes the job: OK queued; FULL or CLOSED, and then the job is freed. */
int pyx_queue_push(pyx_queue *q, pyx_job *j);
/* Queues a request, copying reply, payload and caller (the ETF of the
 * calling process's pid, without version byte; none when clen is 0) (Go
 * memory may not be kept by C). OK, FULL, CLOSED or NOMEM. */
int pyx_queue_request(pyx_queue *q, pyx_ctx *ctx, long long ctx_id, pyx_out *out, int op, long long seq,
                      long long chain, const void *reply, size_t rlen, const void *caller, size_t clen,
                      const void *payload, size_t plen);
/* Queues a request whose payload is the first plen bytes of the file at
 * path (a slot, exec.c). Copies reply and path. As pyx_queue_request. */
int pyx_queue_file_request(pyx_queue *q, pyx_ctx *ctx, long long ctx_id, pyx_out *out, int op, long long seq,
                           long long chain, const void *reply, size_t rlen, const void *caller, size_t clen,
                           const char *path, size_t pathlen, size_t plen);
/* Queues the BEAM's answer to callback cb (a versioned term). As
 * pyx_queue_request. */
int pyx_queue_cb_reply(pyx_queue *q, long long cb, const void *payload, size_t plen);
/* Queues the drop of the environment in ctx of the process whose pid's
 * ETF is pid[0..len). As pyx_queue_request. */
int pyx_queue_drop_env(pyx_queue *q, pyx_ctx *ctx, const void *pid, size_t len);
/* Queues a Go func() (a cgo.Handle), run on the executor's thread. */
int pyx_queue_go(pyx_queue *q, uintptr_t handle);
/* Blocks until a job comes and marks it running; NULL once closed and
 * drained, or at once when a loop of the queue has work (loop_active:
 * loop.h's pyx_loop_pop calls it then). It first polls for spin_ns: a sleeping thread takes tens of
 * microseconds to wake on these machines, longer than a request. The poll
 * yields the CPU at each turn, so that on a busy machine it gives way to
 * the threads (the BEAM's among them) that have work. Under load (a job
 * was left waiting in the last PYX_BUSY_POPS pops) it polls for
 * busy_spin_ns instead: requests then keep coming anyway, and the CPU the
 * poll takes is the BEAM's, which sends them (64 callers: 146k -> 181k
 * calls/s, medians of one interleaved run of 6 rounds). */
pyx_job *pyx_queue_pop(pyx_queue *q, long long spin_ns, long long busy_spin_ns);
/* For an executor inside erlang.call (no GIL held): blocks until the
 * answer to callback cb comes, or a request of chain comes (the BEAM
 * calling back into this executor on behalf of the waiting request), and
 * takes it out of the queue, however far back; other jobs wait. A request
 * taken is marked running, as pyx_queue_pop does; pyx_queue_resume gives
 * the mark back to outer once it is done. NULL when outer (or a request
 * below it) is cancelled or the queue closed. Like pyx_queue_pop, it polls
 * for spin_ns (each time the queue grows without what it waits for) before
 * it sleeps: the answer comes a port round trip later. */
pyx_job *pyx_queue_pop_for(pyx_queue *q, long long cb, long long chain, pyx_job *outer, long long spin_ns);
/* A request taken by pyx_queue_pop_for is over: outer runs again. */
void pyx_queue_resume(pyx_queue *q, pyx_job *outer);
/* The running job is over; the caller frees it after this. */
void pyx_queue_done(pyx_queue *q);
/* Cancels the requests whose reply prefix is reply: queued ones will be
 * skipped without running; a running one (or one below it, waiting in
 * erlang.call) is marked, and the wait of pyx_queue_watch woken. Returns the seq of the request running on top,
 * for pyx_interrupt, or 0: a cancelled request stops its whole chain. */
long long pyx_queue_cancel(pyx_queue *q, const pyx_out *out, const void *reply, size_t rlen);
/* For the stuck watchdog (pool.go), which calls it only while a cancel
 * is pending, never per request: looks at the requests running (the top
 * one and those below it, waiting in erlang.call) for one cancelled while
 * it ran. -1: none; 0: some, all cancelled less than grace_ns ago; 1: one
 * was cancelled grace_ns ago or more and still runs, its context's id in
 * *ctx. A request that ends leaves the running chain (pyx_queue_done,
 * pyx_queue_resume) under mu, before it is freed. */
int pyx_queue_stuck(pyx_queue *q, long long grace_ns, long long *ctx);
void pyx_queue_close(pyx_queue *q);
/* Under q->mu: wakes a loop's select that the executor is in (loop.h),
 * once per select unless always (a cancel). */
void pyx_queue_wake_loop(pyx_queue *q, int always);

/* For an executor's thread waiting within request outer (no GIL held), for
 * something other than the BEAM (a channel's message: channel.c): blocks
 * until ready(arg) (called under q->mu: its own lock comes after q's), a
 * request of any caller comes (taken out of the queue, however far back,
 * and marked running on top of outer, as pyx_queue_pop_for does: the
 * caller runs it and gives outer back with pyx_queue_resume), the
 * monotonic deadline_ns passes (-1: none), or, if cancellable, outer is
 * cancelled (or q closed). The request or NULL, and *why: 0 ready, 1 the
 * deadline, 2 cancelled (wait.h's PYX_WAIT_*). Whoever makes ready true
 * calls pyx_queue_poke(q) after, without its own lock held. */
pyx_job *pyx_queue_pop_any(pyx_queue *q, pyx_job *outer, int (*ready)(void *), void *arg, long long deadline_ns,
                           int cancellable, int *why);
/* Wakes q's executor in pyx_queue_pop_any, to look at its ready() again.
 * Any thread; takes q->mu. */
void pyx_queue_poke(pyx_queue *q);

/* Whether j, or a request below it (on whose behalf it runs), is
 * cancelled: a cancel stops the whole chain. Any thread. */
int pyx_job_cancelled(const pyx_job *j);
/* For the executor's thread, about to wait on w (w's mu not held): a
 * cancel of a running request then wakes w; NULL when the wait is over. */
void pyx_queue_watch(pyx_queue *q, pyx_wake *w);
#endif
