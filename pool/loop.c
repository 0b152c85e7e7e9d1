/* loop.c: the contexts' event loops, driven by their executor (loop.h).
 * The set of loops of a queue is only touched on the executor's thread;
 * the queue's mutex guards in_loop and loop_woken, which pushes read. */
#include "loop.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "current.h"
#include "etfw.h"
#include "log.h"
#include "run.h"
#include "wait.h"

/* A step job's seq and chain: above any request's (pool.go counts from
 * 1), one per context. */
#define LOOP_SEQ (1LL << 48)

typedef struct {
    pyx_ctx *ctx;
    PyObject *loop; /* strong, an object of ctx's interpreter */
    pyx_job *job;   /* what the code the loop runs sees as its request */
    int active;     /* its last step said it has work */
} entry;

/* The loops of one executor's contexts: one in subinterp and worker
 * mode, several on a shared executor (multi_executor). */
typedef struct {
    pyx_exec *ex;
    int n, cap;
    entry *e;
} loopset;

static loopset *set_of(pyx_queue *q) { return __atomic_load_n(&q->loops, __ATOMIC_ACQUIRE); }

static entry *find(loopset *s, pyx_ctx *c)
{
    for (int i = 0; s != NULL && i < s->n; i++)
        if (s->e[i].ctx == c)
            return &s->e[i];
    return NULL;
}

static void drain(pyx_queue *q)
{
    uint64_t v;
    (void)!read(q->loop_fd, &v, sizeof v); /* nonblocking: EAGAIN when empty */
}

/* Logs the pending exception's traceback at error, as the context's, and
 * clears it. GIL held. */
static void log_exception(pyx_ctx *c)
{
    pyx_buf tb = {0}, res = {0};
    pyx_run_error(&tb, &res);
    pyx_out *out = pyx_current_output();
    if (out != NULL && tb.len > 0)
        (void)pyx_out_log(out, "error", c->id, NULL, 0, tb.data, tb.len);
    pyx_buf_free(&tb);
    pyx_buf_free(&res);
    PyErr_Clear();
}

/* While requests keep coming, the loops still get a step this often
 * (one that does not wait: poll), so their timers and ready tasks are not
 * starved by a queue that is never empty (a stream's batches, a caller in
 * a loop). */
#define LOOP_FAIR_NS 1000000LL

/* When this executor last stepped its loops (CLOCK_MONOTONIC ns). */
static __thread long long last_step_ns;

/* One _run_once of each loop of s. Only the loop that alone has work may
 * block in its select (until its next timer, a reader, or a push to q
 * writes loop_fd); with several, each waits at most 1 ms, so none waits
 * on another's select for long. poll: jobs wait, so no select waits at
 * all. No GIL on entry. */
static void step(pyx_queue *q, loopset *s, int poll)
{
    last_step_ns = pyx_now_ns();
    pthread_mutex_lock(&q->mu);
    if ((q->n > 0 && !poll) || q->closed) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->in_loop = 1;
    q->loop_woken = 0;
    pthread_mutex_unlock(&q->mu);
    __atomic_store_n(&q->loop_active, 0, __ATOMIC_SEQ_CST); /* kicks from now on count */
    int actives = 0, any = 0;
    for (int i = 0; i < s->n; i++)
        actives += s->e[i].active;
    PyEval_RestoreThread(s->ex->ts); /* GIL held from here ... */
    for (int i = 0; i < s->n; i++) {
        /* s->e may grow during the step (a nested request of another
         * context makes its loop): read through the index each time */
        PyObject *cap = poll || !s->e[i].active ? PyFloat_FromDouble(0)
                        : actives > 1           ? PyFloat_FromDouble(0.001)
                                                : Py_NewRef(Py_None);
        PyObject *loop = Py_NewRef(s->e[i].loop);
        pyx_job *outer = pyx_current_enter(s->e[i].job);
        PyObject *r = cap != NULL ? PyObject_CallMethod(loop, "_pyx_step", "O", cap) : NULL; /* owned */
        pyx_current_leave(outer);
        int active = 1;
        if (r == NULL)
            log_exception(s->e[i].ctx); /* a BaseException out of a task's step */
        else
            active = (int)PyLong_AsLong(r); /* 0 idle, 1 waits, 2 ready handles */
        if (active < 0) {
            PyErr_Clear();
            active = 1;
        }
        s->e[i].active = active > 0;
        any = active > any ? active : any;
        Py_XDECREF(r);
        Py_XDECREF(cap);
        Py_DECREF(loop);
    }
    PyErr_Clear();
    PyEval_SaveThread(); /* ... to here */
    pthread_mutex_lock(&q->mu);
    q->in_loop = 0;
    if (q->loop_woken)
        drain(q);
    q->running = NULL; /* an erlang.call of a step left its job there */
    pthread_mutex_unlock(&q->mu);
    if (any) /* a kick meanwhile stored 2 or 1 too: the larger stays */
        __atomic_fetch_or(&q->loop_active, any, __ATOMIC_ACQ_REL);
}

/* The job at the head of q, marked running, or NULL; never waits. */
static pyx_job *try_pop(pyx_queue *q)
{
    pyx_job *j = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->n > 0) {
        j = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        q->running = j;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

/* Whether this executor's last pop returned a job: the next request
 * often follows its reply within microseconds, so it is polled for before
 * the loop's step (whose select a push wakes only through the eventfd:
 * about 40 us more a call, measured). */
static __thread int after_job;

/* Polls q for a job for spin_ns, yielding the CPU, as pyx_queue_pop. */
static pyx_job *spin_pop(pyx_queue *q, long long spin_ns)
{
    long long until = pyx_now_ns() + spin_ns;
    while (__atomic_load_n(&q->n, __ATOMIC_ACQUIRE) == 0 && pyx_now_ns() < until)
        sched_yield();
    return try_pop(q);
}

pyx_job *pyx_loop_pop(pyx_queue *q, long long spin_ns, long long busy_spin_ns)
{
    int spin = after_job;
    after_job = 1;
    for (;;) {
        loopset *s = set_of(q);
        pyx_job *j;
        if (s == NULL || !__atomic_load_n(&q->loop_active, __ATOMIC_ACQUIRE)) {
            j = pyx_queue_pop(q, spin_ns, busy_spin_ns); /* NULL: closed, or a loop got work */
            if (j != NULL || s == NULL)
                return j;
        } else if (pyx_now_ns() - last_step_ns >= LOOP_FAIR_NS && __atomic_load_n(&q->n, __ATOMIC_ACQUIRE) > 0) {
            step(q, s, 1); /* its turn, though jobs wait: then the jobs */
            if ((j = try_pop(q)) != NULL)
                return j;
        } else if ((j = try_pop(q)) != NULL)
            return j;
        /* only a loop that waits (1) is polled past; ready handles (2) run now */
        else if (spin && spin_ns > 0 && __atomic_load_n(&q->loop_active, __ATOMIC_ACQUIRE) == 1 &&
                 (j = spin_pop(q, __atomic_load_n(&q->busy, __ATOMIC_RELAXED) > 0 ? busy_spin_ns : spin_ns)) != NULL)
            return j;
        spin = 0;
        pthread_mutex_lock(&q->mu);
        int closed = q->closed && q->n == 0;
        pthread_mutex_unlock(&q->mu);
        if (closed)
            return NULL;
        if (__atomic_load_n(&q->loop_active, __ATOMIC_ACQUIRE)) {
            after_job = 0;
            step(q, s, 0);
        }
    }
}

int pyx_loop_cancel(pyx_queue *q, pyx_out *out, const void *reply, size_t rlen)
{
    if (set_of(q) == NULL)
        return PYX_QUEUE_OK;
    pyx_job *j = malloc(sizeof *j + rlen);
    if (j == NULL)
        return PYX_QUEUE_NOMEM;
    *j = (pyx_job){.kind = PYX_JOB_LOOP_CANCEL, .out = out, .reply_len = rlen};
    memcpy(j->data, reply, rlen);
    return pyx_queue_push(q, j);
}

/* Calls method of every loop of s (of c's only, if c), with arg, each
 * within its step job. GIL not held on entry; q's loops get a step. */
static void each_loop(pyx_queue *q, pyx_ctx *c, const char *method, const void *arg, size_t len)
{
    loopset *s = set_of(q);
    if (s == NULL || (c != NULL && find(s, c) == NULL))
        return;
    PyEval_RestoreThread(s->ex->ts); /* GIL held from here ... */
    PyObject *bytes = PyBytes_FromStringAndSize(arg, (Py_ssize_t)len); /* owned */
    for (int i = 0; bytes != NULL && i < s->n; i++) {
        if (c != NULL && s->e[i].ctx != c)
            continue;
        PyObject *loop = Py_NewRef(s->e[i].loop);
        pyx_job *outer = pyx_current_enter(s->e[i].job);
        PyObject *r = PyObject_CallMethod(loop, method, "O", bytes); /* owned */
        pyx_current_leave(outer);
        if (r == NULL)
            log_exception(s->e[i].ctx);
        Py_XDECREF(r);
        Py_DECREF(loop);
    }
    Py_XDECREF(bytes);
    PyErr_Clear();
    PyEval_SaveThread(); /* ... to here */
    __atomic_fetch_or(&q->loop_active, 2, __ATOMIC_ACQ_REL); /* the cancels run in a step */
}

void pyx_loop_cancel_run(pyx_queue *q, pyx_job *j) { each_loop(q, NULL, "_pyx_cancel", j->data, j->reply_len); }

void pyx_loop_down(pyx_queue *q, pyx_ctx *c, const void *pid, size_t len) { each_loop(q, c, "_pyx_down", pid, len); }

void pyx_loop_forget(pyx_ctx *c)
{
    pyx_queue *q = pyx_current_queue();
    loopset *s = q != NULL ? set_of(q) : NULL;
    entry *e = find(s, c);
    if (e == NULL)
        return;
    pyx_job *outer = pyx_current_enter(e->job);
    PyObject *r = PyObject_CallMethod(e->loop, "_pyx_forget", NULL); /* owned */
    pyx_current_leave(outer);
    if (r == NULL)
        log_exception(c);
    Py_XDECREF(r);
    e = find(s, c); /* _pyx_forget may have run nested requests */
    Py_DECREF(e->loop);
    free(e->job);
    *e = s->e[--s->n];
}


/* ---- the erlang module's functions (py/loop.py calls them) ---- */

/* _loop_register(loop): loop becomes the calling context's, driven by its
 * executor; returns (queue, loop_fd) for _loop_kick and its selector. */
static PyObject *loop_register(PyObject *m, PyObject *loop)
{
    (void)m;
    pyx_queue *q = pyx_current_queue();
    pyx_ctx *c = pyx_current_ctx();
    pyx_out *out = pyx_current_output();
    if (q == NULL || c == NULL || out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "erlang: a context's event loop is made by a request of that context");
        return NULL;
    }
    loopset *s = set_of(q);
    if (s == NULL) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            close(fd);
            return PyErr_NoMemory();
        }
        s->ex = c->ex;
        pthread_mutex_lock(&q->mu);
        q->loop_fd = fd;
        pthread_mutex_unlock(&q->mu);
        __atomic_store_n(&q->loops, s, __ATOMIC_RELEASE);
    }
    if (find(s, c) != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "erlang: this context has its event loop already");
        return NULL;
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 4;
        entry *e = realloc(s->e, (size_t)cap * sizeof *e);
        if (e == NULL)
            return PyErr_NoMemory();
        s->e = e;
        s->cap = cap;
    }
    pyx_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return PyErr_NoMemory();
    *job = (pyx_job){.kind = PYX_JOB_LOOP, .seq = LOOP_SEQ + c->id, .chain = LOOP_SEQ + c->id, .ctx = c,
                     .ctx_id = c->id, .out = out};
    s->e[s->n++] = (entry){.ctx = c, .loop = Py_NewRef(loop), .job = job, .active = 1};
    __atomic_fetch_or(&q->loop_active, 2, __ATOMIC_ACQ_REL);
    return Py_BuildValue("(Ki)", (unsigned long long)(uintptr_t)q, q->loop_fd);
}

/* _loop_get(): the calling context's loop, or None. */
static PyObject *loop_get(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    pyx_queue *q = pyx_current_queue();
    entry *e = q != NULL ? find(set_of(q), pyx_current_ctx()) : NULL;
    return Py_NewRef(e != NULL ? e->loop : Py_None);
}

void pyx_loop_ready(pyx_queue *q)
{
    __atomic_fetch_or(&q->loop_active, 2, __ATOMIC_ACQ_REL);
    if (q != pyx_current_queue()) {
        pthread_mutex_lock(&q->mu);
        pthread_cond_signal(&q->cv);
        pyx_queue_wake_loop(q, 1);
        pthread_mutex_unlock(&q->mu);
    }
}

/* _loop_kick(queue, level): a loop of that queue has work now, 2 ready
 * handles, 1 a timer or a reader. From its executor a flag; from another
 * thread the executor's wait is woken too. */
static PyObject *loop_kick(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_loop_kick(queue, level)");
        return NULL;
    }
    unsigned long long a = PyLong_AsUnsignedLongLong(args[0]);
    long level = PyLong_AsLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    pyx_queue *q = (pyx_queue *)(uintptr_t)a; /* queues are never freed (pool.go) */
    if (q == NULL)
        Py_RETURN_NONE;
    if (q == pyx_current_queue())
        __atomic_fetch_or(&q->loop_active, level == 2 ? 2 : 1, __ATOMIC_ACQ_REL);
    else { /* another thread: the executor steps at once */
        PyThreadState *ts = PyEval_SaveThread(); /* the executor may want the GIL */
        pyx_loop_ready(q);
        PyEval_RestoreThread(ts);
    }
    Py_RETURN_NONE;
}

/* _loop_hold(flag): erlang.run, in a request, runs the loop itself; while
 * it does, a push (an async_call's answer: _loop_answers) or a cancel of
 * the request wakes its select (loop_fd). */
static PyObject *loop_hold(PyObject *m, PyObject *arg)
{
    (void)m;
    pyx_queue *q = pyx_current_queue();
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    if (q != NULL && q->loop_fd >= 0) {
        pthread_mutex_lock(&q->mu);
        q->in_loop = on;
        q->loop_woken = 0; /* a push wakes the select: an async_call's answer may be it */
        if (!on)
            drain(q);
        pthread_mutex_unlock(&q->mu);
    }
    Py_RETURN_NONE;
}

/* _loop_check(): raises KeyboardInterrupt if the request running here was
 * cancelled (once, as a wait does: run.h); for erlang.run's selects. */
static PyObject *loop_check(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    if (pyx_current_cancelled() && pyx_wait_begin() < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* _task_reply(reply, kind, value): the answer to task request reply (its
 * id's bytes): kind 0 {ok, value}, 1 the exception value, 2 cancelled. */
static PyObject *task_reply(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    long kind = nargs == 3 ? PyLong_AsLong(args[1]) : -1;
    if (nargs != 3 || !PyBytes_Check(args[0]) || kind < 0 || kind > 2 ||
        (kind == 1 && !PyExceptionInstance_Check(args[2]))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_task_reply(reply: bytes, kind: 0..2, value)");
        return NULL;
    }
    pyx_ctx *c = pyx_current_ctx();
    pyx_out *out = pyx_current_output();
    if (c == NULL || out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_task_reply: not on a context's thread");
        return NULL;
    }
    pyx_buf res = {0}, tb = {0};
    pyx_etf_version(&res);
    if (kind == 0)
        pyx_run_ok(c, args[2], &res);
    else if (kind == 1) {
        PyObject *e = args[2];
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(e)), Py_NewRef(e), PyException_GetTraceback(e));
        pyx_run_error(&tb, &res);
    } else {
        const char *msg = "the task was cancelled";
        (void)(pyx_etf_tuple(&res, 2) < 0 || pyx_etf_atom(&res, "error") < 0 || pyx_etf_tuple(&res, 2) < 0 ||
               pyx_etf_atom(&res, "cancelled") < 0 || pyx_etf_binary(&res, msg, strlen(msg)) < 0);
    }
    if (tb.len > 0)
        (void)pyx_out_log(out, "info", c->id, NULL, 0, tb.data, tb.len);
    pyx_out_send(out, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]), res.data, res.len);
    pyx_buf_free(&res);
    pyx_buf_free(&tb);
    Py_RETURN_NONE;
}

/* _loop_log(text): an error line of the calling context's (a task's
 * exception that nobody awaits). */
static PyObject *loop_log(PyObject *m, PyObject *text)
{
    (void)m;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL)
        return NULL;
    pyx_ctx *c = pyx_current_ctx();
    pyx_out *out = pyx_current_output();
    if (out != NULL)
        (void)pyx_out_log(out, "error", c != NULL ? c->id : 0, NULL, 0, s, (size_t)n);
    Py_RETURN_NONE;
}

/* erlang.async_call's callback numbers: apart from erlang.call's (which
 * count from 1 in erlmod.c), so that an answer is never taken for the
 * other's. */
#define ASYNC_CB (1LL << 52)
static long long next_async_cb = ASYNC_CB;

/* _async_send(name, args): sends the callback {'$cb', N} with the body
 * {Ctx, 0, Name, Args} (docs/PROTOCOL.md) without waiting, and returns N;
 * the BEAM's answer comes to the context's queue as a PYX_JOB_CB_REPLY
 * (pyx_loop_cb_reply). Chain 0: the function's calls back into Python are
 * requests of their own, served as any (the loop does not wait). */
static PyObject *async_send(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    (void)m;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_async_send(name: str, args: tuple)");
        return NULL;
    }
    pyx_ctx *c = pyx_current_ctx();
    pyx_out *out = pyx_current_output();
    if (c == NULL || out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "erlang.async_call: not on a context's thread");
        return NULL;
    }
    long long cb = __atomic_add_fetch(&next_async_cb, 1, __ATOMIC_RELAXED);
    pyx_buf id = {0}, body = {0};
    PyObject *res = NULL;
    PyObject *tag = PyObject_CallFunction(c->types.atom_type, "s", "$cb"); /* owned, all */
    PyObject *list = PySequence_List(args[1]);
    PyObject *idt = tag && list ? Py_BuildValue("(OL)", tag, cb) : NULL;
    PyObject *bt = idt ? Py_BuildValue("(LiOO)", c->id, 0, args[0], list) : NULL;
    if (bt != NULL && pyx_etf_version(&id) == 0 && pyx_to_etf(&c->types, idt, &id) == 0 &&
        pyx_etf_version(&body) == 0 && pyx_to_etf(&c->types, bt, &body) == 0) {
        pyx_out_send(out, id.data, id.len, body.data, body.len);
        res = PyLong_FromLongLong(cb);
    } else if (!PyErr_Occurred())
        PyErr_NoMemory();
    Py_XDECREF(tag);
    Py_XDECREF(list);
    Py_XDECREF(idt);
    Py_XDECREF(bt);
    pyx_buf_free(&id);
    pyx_buf_free(&body);
    return res;
}

/* _etf_decode(data): the versioned term in bytes data, with the calling
 * context's classes. */
static PyObject *etf_decode(PyObject *m, PyObject *data)
{
    (void)m;
    pyx_ctx *c = pyx_current_ctx();
    if (c == NULL || !PyBytes_Check(data) || PyBytes_GET_SIZE(data) < 1 ||
        (unsigned char)PyBytes_AS_STRING(data)[0] != ETF_VERSION) {
        PyErr_SetString(PyExc_ValueError, "_etf_decode: a versioned term on a context's thread");
        return NULL;
    }
    size_t pos = 1;
    return pyx_from_etf(&c->types, (const unsigned char *)PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
                        &pos);
}

/* Hands answer j to the loop of s whose async_call waits for it. GIL
 * held; the current job is restored. */
static void dispatch(loopset *s, pyx_job *j)
{
    PyObject *data = PyBytes_FromStringAndSize((const char *)j->data, (Py_ssize_t)j->payload_len); /* owned */
    for (int i = 0; data != NULL && i < s->n; i++) {
        PyObject *loop = Py_NewRef(s->e[i].loop);
        pyx_job *outer = pyx_current_enter(s->e[i].job);
        PyObject *r = PyObject_CallMethod(loop, "_pyx_cb_answer", "LO", j->seq, data); /* owned */
        pyx_current_leave(outer);
        int found = r != NULL && PyObject_IsTrue(r) == 1;
        if (r == NULL)
            log_exception(s->e[i].ctx);
        Py_XDECREF(r);
        Py_DECREF(loop);
        if (found)
            break;
    }
    Py_XDECREF(data);
    PyErr_Clear();
}

void pyx_loop_cb_reply(pyx_queue *q, pyx_job *j)
{
    loopset *s = set_of(q);
    if (s == NULL || j->seq <= ASYNC_CB)
        return; /* an erlang.call that gave up: dropped */
    PyEval_RestoreThread(s->ex->ts); /* GIL held from here ... */
    dispatch(s, j);
    PyEval_SaveThread(); /* ... to here */
    __atomic_fetch_or(&q->loop_active, 2, __ATOMIC_ACQ_REL); /* the future's callbacks are ready */
}

/* _loop_answers(): takes the answers to async_calls out of the queue,
 * wherever they are in it, and hands them to their loops; for the loop's
 * select (erlang.run in a request, when the executor's main loop does not
 * pop). Re-arms the eventfd, so the next push wakes the select again. */
static PyObject *loop_answers(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    pyx_queue *q = pyx_current_queue();
    loopset *s = q != NULL ? set_of(q) : NULL;
    if (s == NULL)
        Py_RETURN_NONE;
    pyx_job *got[64];
    int n = 0;
    pthread_mutex_lock(&q->mu);
    q->loop_woken = 0;
    for (size_t i = 0; i < q->n && n < 64;) {
        pyx_job *c = q->items[(q->head + i) % q->cap];
        if (c->kind != PYX_JOB_CB_REPLY || c->seq <= ASYNC_CB) {
            i++;
            continue;
        }
        for (size_t k = i; k + 1 < q->n; k++) /* close the gap */
            q->items[(q->head + k) % q->cap] = q->items[(q->head + k + 1) % q->cap];
        __atomic_store_n(&q->n, q->n - 1, __ATOMIC_RELEASE);
        got[n++] = c;
    }
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < n; i++) {
        dispatch(s, got[i]);
        free(got[i]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef loop_methods[] = {
    {"_async_send", (PyCFunction)(void (*)(void))async_send, METH_FASTCALL, "_async_send(name, args): see async_call"},
    {"_etf_decode", etf_decode, METH_O, "_etf_decode(data): a versioned term"},
    {"_loop_answers", loop_answers, METH_NOARGS, "_loop_answers(): async_call's answers, from the queue"},
    {"_loop_register", loop_register, METH_O, "_loop_register(loop): see erlang.run"},
    {"_loop_get", loop_get, METH_NOARGS, "_loop_get(): the context's loop or None"},
    {"_loop_kick", (PyCFunction)(void (*)(void))loop_kick, METH_FASTCALL, "_loop_kick(queue, level): the loop has work"},
    {"_loop_hold", loop_hold, METH_O, "_loop_hold(flag): erlang.run runs the loop"},
    {"_loop_check", loop_check, METH_NOARGS, "_loop_check(): KeyboardInterrupt if cancelled"},
    {"_loop_log", loop_log, METH_O, "_loop_log(text): an error line"},
    {"_task_reply", (PyCFunction)(void (*)(void))task_reply, METH_FASTCALL, "_task_reply(reply, kind, value)"},
    {NULL, NULL, 0, NULL},
};

int pyx_loop_add_functions(PyObject *module) { return PyModule_AddFunctions(module, loop_methods); }
