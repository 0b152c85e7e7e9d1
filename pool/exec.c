/* exec.c: an executor's loop, all in C: take a job, run it, write its
 * reply. A request never enters Go on this thread, so the Go scheduler is
 * not involved in it; only set-up jobs (PYX_JOB_GO) call back into Go.
 * No GIL held here: pyx_run takes it. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "_cgo_export.h"
#include "current.h"
#include "env.h"
#include "etfw.h"
#include "log.h"
#include "loop.h"
#include "run.h"

/* Sends {error, {Tag, Detail}}; tag is at most 255 bytes of ASCII. */
static void error_reply(pyx_job *j, const char *tag, const char *detail)
{
    pyx_buf res = {0};
    if (pyx_etf_version(&res) == 0 && pyx_etf_tuple(&res, 2) == 0 && pyx_etf_atom(&res, "error") == 0 &&
        pyx_etf_tuple(&res, 2) == 0 && pyx_etf_atom(&res, tag) == 0 &&
        pyx_etf_binary(&res, detail, strlen(detail)) == 0)
        pyx_out_send(j->out, j->data, j->reply_len, res.data, res.len);
    pyx_buf_free(&res);
}

/* {error, {slot, Reason}} for a slot that cannot be read. */
static void slot_error(pyx_job *j, int err) { error_reply(j, "slot", strerror(err)); }

/* The slot last seen, mapped once it comes twice in a row: a caller uses
 * its slot call after call, and the executor then reads its payloads where
 * they lie, without a copy. Mapping costs more than a read when callers
 * alternate, hence the wait for a second request. A slot is only ever
 * written and grown by its caller, never truncated, so the mapping stays
 * valid; an unlinked slot lives on while mapped, until another one comes. */
typedef struct {
    dev_t dev;
    ino_t ino;
    void *map; /* NULL: not mapped */
    size_t len;
} slot_map;

/* An executor's buffers, kept from one request to the next so that a large
 * term does not cost fresh pages (page faults, then munmap) every time. */
typedef struct {
    pyx_buf in;    /* a slot's payload, when read */
    pyx_buf res;   /* the result */
    pyx_buf tb;    /* a traceback */
    slot_map slot; /* the slot last seen */
} bufs;

/* Buffers above this size are freed after the request, not kept. */
#define KEEP_BUF (16u << 20)

static void reuse(pyx_buf *b)
{
    if (b->cap > KEEP_BUF)
        pyx_buf_free(b);
    b->len = 0;
}

/* Reads n bytes of fd into b; 0 or an errno. */
static int read_slot(int fd, size_t n, pyx_buf *b)
{
    if (pyx_buf_reserve(b, n) < 0)
        return ENOMEM;
    while (b->len < n) {
        ssize_t r = pread(fd, b->data + b->len, n - b->len, (off_t)b->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EINVAL;
        b->len += (size_t)r;
    }
    return 0;
}

static void unmap_slot(slot_map *m)
{
    if (m->map != NULL)
        munmap(m->map, m->len);
    m->map = NULL;
}

/* Points *payload at a slot's payload: in its mapping, or read into b->in.
 * 0 or an errno. */
static int slot_payload(pyx_job *j, int fd, bufs *b, const unsigned char **payload)
{
    struct stat st;
    slot_map *m = &b->slot;
    if (fstat(fd, &st) < 0)
        return errno;
    if (j->payload_len == 0 || (size_t)st.st_size < j->payload_len)
        return EINVAL;
    int same = m->dev == st.st_dev && m->ino == st.st_ino;
    if (same && m->map != NULL && m->len >= j->payload_len) {
        *payload = m->map;
        return 0;
    }
    unmap_slot(m); /* another slot, or this one grew */
    if (same && (size_t)st.st_size <= KEEP_BUF) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) {
            m->map = p;
            m->len = (size_t)st.st_size;
            *payload = p;
            return 0;
        }
    }
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    int err = read_slot(fd, j->payload_len, &b->in);
    if (err == 0)
        *payload = b->in.data;
    return err;
}

/* Writes the reply: res inline, or, when the request came in a slot (fd >=
 * 0) and res is large, res into the slot and a 9-byte marker inline: a zero
 * byte (never the start of a term) and res's length, big-endian
 * (docs/PROTOCOL.md). Into the slot's mapping when it is mapped (m, its
 * payload read) and large enough: a copy into pages already mapped costs a
 * quarter of a pwrite(2) of them (1 MiB: 25 against 100 us). */
static void reply(pyx_job *j, int fd, const slot_map *m, const pyx_buf *res)
{
    if (fd >= 0 && res->len >= PYX_SLOT_MIN) {
        size_t done = 0;
        if (m != NULL && m->len >= res->len) {
            memcpy(m->map, res->data, res->len);
            done = res->len;
        }
        while (done < res->len) {
            ssize_t w = pwrite(fd, res->data + done, res->len - done, (off_t)done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        if (done == res->len) {
            unsigned char marker[9] = {0};
            for (int i = 0; i < 8; i++)
                marker[1 + i] = (unsigned char)((uint64_t)res->len >> (56 - 8 * i));
            pyx_out_send(j->out, j->data, j->reply_len, marker, sizeof marker);
            return;
        }
        /* the slot is full (ENOSPC...): inline after all */
    }
    if (res->len > UINT32_MAX - j->reply_len) { /* over what {packet, 4} can carry */
        char detail[64];
        snprintf(detail, sizeof detail, "a result of %zu bytes", res->len);
        error_reply(j, "result_too_large", detail);
        return;
    }
    pyx_out_send(j->out, j->data, j->reply_len, res->data, res->len);
}

/* Whether a request's id (versioned) is {cast, _}: a cast's caller does
 * not wait for its result, so nobody sees its error but the logger. */
static int is_cast(const pyx_job *j)
{
    const unsigned char *d = j->data;
    size_t n = j->reply_len, at, len;
    if (n < 6 || d[0] != ETF_VERSION || d[1] != SMALL_TUPLE_EXT || d[2] != 2)
        return 0;
    if (d[3] == SMALL_ATOM_UTF8_EXT || d[3] == SMALL_ATOM_EXT)
        len = d[4], at = 5;
    else if (d[3] == ATOM_UTF8_EXT || d[3] == ATOM_EXT)
        len = (size_t)d[4] << 8 | d[5], at = 6;
    else
        return 0;
    return len == 4 && at + 4 <= n && memcmp(d + at, "cast", 4) == 0;
}

/* The calling process's pid of job j, or NULL (log.h). */
static const void *caller_of(const pyx_job *j) { return j->caller_len > 0 ? j->data + j->caller_off : NULL; }

/* {'$env', {Ctx, Pid}}: the caller of j has an environment in its context
 * now, so the BEAM is to tell when it exits (docs/PROTOCOL.md). Sent
 * before the request's reply, so the BEAM watches the process before it
 * can have its answer and go. Once per process and context. */
static void env_notice(const pyx_job *j)
{
    pyx_buf hdr = {0}, body = {0};
    if (pyx_etf_version(&hdr) == 0 && pyx_etf_atom(&hdr, "$env") == 0 && pyx_etf_version(&body) == 0 &&
        pyx_etf_tuple(&body, 2) == 0 && pyx_etf_int(&body, j->ctx_id) == 0 &&
        pyx_etf_put_(&body, caller_of(j), j->caller_len) == 0)
        pyx_out_send(j->out, hdr.data, hdr.len, body.data, body.len);
    pyx_buf_free(&hdr);
    pyx_buf_free(&body);
}

/* The executor's queue, for erlang.call. */
static __thread long long own_spin_ns;


/* Runs one request and writes its reply. No GIL held on entry or exit. */
static void run_request(pyx_job *j, bufs *b)
{
    const unsigned char *payload = j->data + j->reply_len;
    int fd = -1;
    if (j->in_file) {
        fd = open((const char *)payload, O_RDWR | O_CLOEXEC);
        int err = fd < 0 ? errno : slot_payload(j, fd, b, &payload);
        if (err != 0) {
            if (fd >= 0)
                close(fd);
            slot_error(j, err);
            return;
        }
    }
    pyx_job *outer = pyx_current_enter(j);
    pyx_caller who = {.pid = caller_of(j), .len = j->caller_len, .nested = j->chain != j->seq};
    pyx_run(j->ctx, j->seq, &who, j->op, payload, j->payload_len, &b->res, &b->tb);
    pyx_current_leave(outer);
    if (who.created)
        env_notice(j);
    /* To the BEAM's logger: at info when the caller gets the error (it has
     * it: no error-level event of its own), at error for a cast's. */
    if (b->tb.len > 0)
        (void)pyx_out_log(j->out, is_cast(j) || who.unwatched ? "error" : "info", j->ctx_id, caller_of(j), j->caller_len,
                          b->tb.data, b->tb.len);
    /* Even a request cancelled while it ran is answered: every request gets
     * exactly one reply (its caller's load-control slot comes back with it),
     * and the BEAM drops one that nobody waits for. */
    /* the payload, if it lay in the mapping, has been converted (copied) */
    int mapped = fd >= 0 && b->slot.map != NULL && payload == b->slot.map;
    if (b->res.len > 0) /* else a task that answers when it ends (loop.h) */
        reply(j, fd, mapped ? &b->slot : NULL, &b->res);
    if (fd >= 0)
        close(fd);
    reuse(&b->in);
    reuse(&b->res);
    reuse(&b->tb);
}

/* A request from a queue: answered as cancelled if it was cancelled before
 * it started (one reply each), else run. */
static void run_job(pyx_job *j, bufs *b)
{
    if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE))
        error_reply(j, "cancelled", "cancelled before it started");
    else
        run_request(j, b);
}

static void free_bufs(bufs *b)
{
    pyx_buf_free(&b->in);
    pyx_buf_free(&b->res);
    pyx_buf_free(&b->tb);
    unmap_slot(&b->slot);
}

/* erlang.call on an executor's thread, within request outer. */
static int callback_in_request(pyx_job *outer, long long cb, const pyx_buf *id, const pyx_buf *body,
                               pyx_buf *answer)
{
    pyx_queue *q = pyx_current_queue();
    pyx_out_send(outer->out, id->data, id->len, body->data, body->len);
    for (;;) {
        pyx_job *j = pyx_queue_pop_for(q, cb, outer->chain, outer, own_spin_ns);
        if (j == NULL)
            return -1;
        if (j->kind == PYX_JOB_CB_REPLY) {
            int rc = pyx_buf_append(answer, j->data, j->payload_len);
            free(j);
            return rc;
        }
        /* The BEAM calls back into this context for the waiting request:
         * run it here, on top of the waiting one. */
        pyx_exec_run_on_top(outer, j);
    }
}

void pyx_exec_run_on_top(pyx_job *outer, pyx_job *j)
{
    bufs nested = {0}; /* its own: the waiting request's payload may still lie in outer's */
    run_job(j, &nested);
    pyx_queue_resume(pyx_current_queue(), outer);
    free(j);
    free_bufs(&nested);
}

/* Threads other than the executors' waiting in erlang.call, by callback
 * number: the BEAM's answer goes straight to them (pyx_callback_reply),
 * not through a queue. Each entry lives on its thread's stack while it
 * waits. Under waiters_mu. */
typedef struct waiter {
    long long cb;
    pthread_cond_t cv;
    pyx_buf *answer;
    int done; /* 1 answered, -1 out of memory */
    struct waiter *next;
} waiter;
static pthread_mutex_t waiters_mu = PTHREAD_MUTEX_INITIALIZER;
static waiter *waiters;

/* erlang.call on any other thread: nothing runs on it meanwhile. */
static int callback_thread(pyx_out *out, long long cb, const pyx_buf *id, const pyx_buf *body, pyx_buf *answer)
{
    waiter w = {.cb = cb, .answer = answer};
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&waiters_mu);
    w.next = waiters;
    waiters = &w;
    pthread_mutex_unlock(&waiters_mu);
    pyx_out_send(out, id->data, id->len, body->data, body->len);
    pthread_mutex_lock(&waiters_mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &waiters_mu);
    for (waiter **p = &waiters; *p != NULL; p = &(*p)->next)
        if (*p == &w) {
            *p = w.next;
            break;
        }
    pthread_mutex_unlock(&waiters_mu);
    pthread_cond_destroy(&w.cv);
    return w.done == 1 ? 0 : -2;
}

int pyx_exec_callback(pyx_out *out, long long cb, const pyx_buf *id, const pyx_buf *body, pyx_buf *answer)
{
    pyx_job *job = pyx_current_job();
    return job != NULL ? callback_in_request(job, cb, id, body, answer) : callback_thread(out, cb, id, body, answer);
}

int pyx_callback_reply(pyx_queue *q, long long cb, const void *payload, size_t plen)
{
    pthread_mutex_lock(&waiters_mu);
    for (waiter *w = waiters; w != NULL; w = w->next)
        if (w->cb == cb && !w->done) {
            w->done = pyx_buf_append(w->answer, payload, plen) == 0 ? 1 : -1;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&waiters_mu);
            return 0;
        }
    pthread_mutex_unlock(&waiters_mu);
    return pyx_queue_cb_reply(q, cb, payload, plen); /* an executor's, or dropped there */
}

void pyx_exec_loop(pyx_queue *q, long long spin_ns, long long busy_spin_ns)
{
    bufs b = {0};
    pyx_job *j;
    pyx_current_set_queue(q);
    own_spin_ns = spin_ns;
    while ((j = pyx_loop_pop(q, spin_ns, busy_spin_ns)) != NULL) {
        if (j->kind == PYX_JOB_GO)
            pyxRunGo(j->go); /* into Go: contexts made and freed */
        else if (j->kind == PYX_JOB_REQUEST)
            run_job(j, &b);
        else if (j->kind == PYX_JOB_DROP_ENV) {
            pyx_env_drop(j->ctx, j->data, j->payload_len);
            pyx_loop_down(q, j->ctx, j->data, j->payload_len); /* its tasks too */
        } else if (j->kind == PYX_JOB_LOOP_CANCEL)
            pyx_loop_cancel_run(q, j);
        else if (j->kind == PYX_JOB_CB_REPLY) /* erlang.async_call's, or an erlang.call's that gave up */
            pyx_loop_cb_reply(q, j);
        pyx_queue_done(q);
        free(j);
    }
    free_bufs(&b);
}
