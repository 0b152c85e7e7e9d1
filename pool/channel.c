/* channel.c: the sidecar's channels (channel.h). Locks: the table's mu,
 * then a channel's wake.mu (never the other way); a channel is freed when
 * its last reference goes (the table holds one while it is listed, each
 * receiver and pusher one while it uses it). */
#include "channel.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "current.h"
#include "etfw.h"
#include "exec.h"
#include "modtypes.h"
#include "run.h"
#include "sleep.h"
#include "wait.h"

typedef struct chan_msg {
    struct chan_msg *next;
    size_t len;
    unsigned char data[];
} chan_msg;

typedef struct pyx_chan {
    struct pyx_chan *next; /* the table's bucket chain; under table.mu */
    long long id;
    int kind;
    long long max;
    pyx_out *out;
    int refs;              /* under table.mu */
    int listed;            /* under table.mu: in the table */
    pyx_wake wake;         /* mu guards what follows; cv: data or close */
    chan_msg *head, *tail;
    size_t count;
    int closed;
    long long ack_count, ack_bytes; /* taken, not yet acknowledged */
    int fds[PYX_CHAN_FDS];          /* eventfds of asyncio waiters */
    int nfds;
    /* the queues of the executors whose request waits in receive() while
     * they serve other requests (queue.h's pyx_queue_pop_any): poked on
     * data or close; one entry per wait */
    pyx_queue *qs[PYX_CHAN_QS];
    int nqs;
} pyx_chan;

#define BUCKETS 1024

static struct {
    pthread_mutex_t mu;
    pyx_chan *buckets[BUCKETS];
    int n;
} table = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static pyx_chan **slot_of(long long id)
{
    pyx_chan **p = &table.buckets[(uint64_t)id % BUCKETS];
    while (*p != NULL && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

static void chan_free(pyx_chan *c)
{
    for (chan_msg *m = c->head, *next; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    pyx_wake_destroy(&c->wake);
    free(c);
}

/* A reference to channel id, or NULL. */
static pyx_chan *chan_get(long long id)
{
    pthread_mutex_lock(&table.mu);
    pyx_chan *c = *slot_of(id);
    if (c != NULL)
        c->refs++;
    pthread_mutex_unlock(&table.mu);
    return c;
}

static void chan_put(pyx_chan *c)
{
    pthread_mutex_lock(&table.mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&table.mu);
    if (last)
        chan_free(c);
}

/* Takes c out of the table (its reference goes with it), if listed. */
static void chan_unlist(pyx_chan *c)
{
    pthread_mutex_lock(&table.mu);
    int put = 0;
    if (c->listed) {
        pyx_chan **p = slot_of(c->id);
        if (*p == c)
            *p = c->next;
        c->listed = 0;
        table.n--;
        put = --c->refs == 0;
    }
    pthread_mutex_unlock(&table.mu);
    if (put)
        chan_free(c);
}

int pyx_chan_open(pyx_out *out, long long id, int kind, long long max)
{
    pyx_chan *c = calloc(1, sizeof *c);
    if (c == NULL || pyx_wake_init(&c->wake) < 0) {
        free(c);
        return PYX_CHAN_NOMEM;
    }
    c->id = id;
    c->kind = kind;
    c->max = max;
    c->out = out;
    c->refs = 1;
    c->listed = 1;
    pthread_mutex_lock(&table.mu);
    pyx_chan **p = slot_of(id);
    int rc = *p != NULL ? PYX_CHAN_EXISTS : table.n >= PYX_CHAN_MAX ? PYX_CHAN_TOO_MANY : PYX_CHAN_OK;
    if (rc == PYX_CHAN_OK) {
        *p = c;
        table.n++;
    }
    pthread_mutex_unlock(&table.mu);
    if (rc != PYX_CHAN_OK)
        chan_free(c);
    return rc;
}

int pyx_chan_count(void)
{
    pthread_mutex_lock(&table.mu);
    int n = table.n;
    pthread_mutex_unlock(&table.mu);
    return n;
}

/* Under c->wake.mu: tells the asyncio waiters (their eventfds). */
static void notify_fds(pyx_chan *c)
{
    static const uint64_t one = 1;
    for (int i = 0; i < c->nfds; i++)
        (void)!write(c->fds[i], &one, sizeof one); /* EAGAIN: readable already */
}

/* Under c->wake.mu: copies the queues to poke (after the unlock: their
 * mutex comes before c's, queue.h). */
static int waiting_queues(pyx_chan *c, pyx_queue **qs)
{
    memcpy(qs, c->qs, (size_t)c->nqs * sizeof *qs);
    return c->nqs;
}

/* No lock held. A queue lives as long as the process (pool.go), so one
 * whose wait ended meanwhile is only woken for nothing. */
static void poke(pyx_queue **qs, int n)
{
    for (int i = 0; i < n; i++)
        pyx_queue_poke(qs[i]);
}

int pyx_chan_push(long long id, const void *data, size_t len)
{
    pyx_chan *c = chan_get(id);
    if (c == NULL)
        return 1;
    chan_msg *m = malloc(sizeof *m + len);
    if (m == NULL) {
        chan_put(c);
        return -1;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    int dropped = 0;
    pthread_mutex_lock(&c->wake.mu);
    if (c->closed) {
        dropped = 1;
    } else {
        if (c->tail != NULL)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->count++;
        pthread_cond_signal(&c->wake.cv); /* a receiver takes it in its ready() */
        notify_fds(c);
    }
    pyx_queue *qs[PYX_CHAN_QS];
    int nqs = waiting_queues(c, qs);
    pthread_mutex_unlock(&c->wake.mu);
    poke(qs, nqs);
    if (dropped)
        free(m);
    chan_put(c);
    return dropped;
}

void pyx_chan_close(long long id, int drop)
{
    pyx_chan *c = chan_get(id);
    if (c == NULL)
        return;
    chan_msg *gone = NULL;
    pthread_mutex_lock(&c->wake.mu);
    c->closed = 1;
    if (drop) {
        gone = c->head;
        c->head = c->tail = NULL;
        c->count = 0;
    }
    int empty = c->head == NULL;
    pthread_cond_broadcast(&c->wake.cv);
    notify_fds(c);
    pyx_queue *qs[PYX_CHAN_QS];
    int nqs = waiting_queues(c, qs);
    pthread_mutex_unlock(&c->wake.mu);
    poke(qs, nqs);
    for (chan_msg *next; gone != NULL; gone = next) {
        next = gone->next;
        free(gone);
    }
    if (empty) /* else the receiver that takes the last message unlists it */
        chan_unlist(c);
    chan_put(c);
}

/* One take: the message (or NULL: closed and empty), and the
 * acknowledgement it makes due. */
typedef struct {
    pyx_chan *c;
    chan_msg *msg;
    long long ack_count, ack_bytes;
    int unlist; /* closed, and this take emptied it */
} take;

/* Under c->wake.mu (pyx_wait's ready): takes the head, if any. */
static int take_ready(void *arg)
{
    take *t = arg;
    pyx_chan *c = t->c;
    if (c->head == NULL)
        return c->closed;
    chan_msg *m = c->head;
    c->head = m->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->count--;
    t->msg = m;
    c->ack_count++;
    c->ack_bytes += (long long)m->len;
    if (c->head == NULL || c->ack_bytes >= c->max / 4) {
        t->ack_count = c->ack_count;
        t->ack_bytes = c->ack_bytes;
        c->ack_count = c->ack_bytes = 0;
    }
    t->unlist = c->closed && c->head == NULL;
    return 1;
}

/* No GIL needed: the '$chan' packet [{Ch, Count, Bytes}]. */
static void send_ack(pyx_chan *c, long long count, long long bytes)
{
    static const unsigned char hdr[] = {ETF_VERSION, SMALL_ATOM_UTF8_EXT, 5, '$', 'c', 'h', 'a', 'n'};
    pyx_buf b = {0};
    if (pyx_etf_version(&b) < 0 || pyx_etf_list(&b, 1) < 0 || pyx_etf_tuple(&b, 3) < 0 ||
        pyx_etf_int(&b, c->id) < 0 || pyx_etf_int(&b, count) < 0 || pyx_etf_int(&b, bytes) < 0 ||
        pyx_etf_nil(&b) < 0) {
        pyx_buf_free(&b);
        return; /* out of memory: Erlang's count stays high, it says busy sooner */
    }
    pyx_out_send(c->out, hdr, sizeof hdr, b.data, b.len);
    pyx_buf_free(&b);
}

/* After a take, no GIL: the acknowledgement, the unlisting. */
static void take_done(take *t)
{
    if (t->ack_count > 0)
        send_ack(t->c, t->ack_count, t->ack_bytes);
    if (t->unlist)
        chan_unlist(t->c);
}

/* GIL held: ChannelClosed, the erlang module's class. */
static PyObject *closed_error(PyObject *module, long long id)
{
    PyObject *cls = PyObject_GetAttrString(module, "ChannelClosed"); /* owned */
    if (cls != NULL) {
        PyErr_Format(cls, "channel %lld is closed", id);
        Py_DECREF(cls);
    }
    return NULL;
}

/* GIL held: the message as Python, (msg,), and frees it. */
static PyObject *message(PyObject *module, pyx_chan *c, chan_msg *m)
{
    PyObject *v = NULL, *res = NULL; /* owned */
    if (c->kind == PYX_CHAN_BYTES) {
        v = PyBytes_FromStringAndSize((const char *)m->data, (Py_ssize_t)m->len);
    } else if (m->len < 1 || m->data[0] != ETF_VERSION) {
        PyErr_SetString(PyExc_ValueError, "a channel message that is no term");
    } else {
        pyx_module_types mt;
        if (pyx_module_types_get(module, &mt) == 0) {
            size_t pos = 1;
            v = pyx_from_etf(&mt.t, m->data, m->len, &pos);
        }
        pyx_module_types_put(&mt);
    }
    free(m);
    if (v != NULL) {
        res = PyTuple_Pack(1, v);
        Py_DECREF(v);
    }
    return res;
}

/* pyx_queue_pop_any's ready(), under the queue's mutex: a take under c's. */
static int take_locked(void *arg)
{
    take *t = arg;
    pthread_mutex_lock(&t->c->wake.mu);
    int r = take_ready(t);
    pthread_mutex_unlock(&t->c->wake.mu);
    return r;
}

/* No GIL held. A receive() of a request on an executor's thread: while it
 * waits, the executor runs the other requests that come for it (any
 * caller's), each on top of the waiting one, so that a receive blocks its
 * caller and not its context. PYX_WAIT_* as pyx_wait's; -1 when not on an
 * executor within a request, or too many waits on c already (then the
 * plain wait, which serves nothing). */
static int wait_serving(pyx_chan *c, take *t, long long deadline, int cancellable)
{
    pyx_queue *q = pyx_current_queue();
    pyx_job *outer = q != NULL ? pyx_current_job() : NULL;
    if (outer == NULL)
        return -1;
    pthread_mutex_lock(&c->wake.mu);
    int listed = c->nqs < PYX_CHAN_QS;
    if (listed)
        c->qs[c->nqs++] = q; /* before the first look: no poke is missed */
    pthread_mutex_unlock(&c->wake.mu);
    if (!listed)
        return -1;
    int why;
    pyx_job *j;
    while ((j = pyx_queue_pop_any(q, outer, take_locked, t, deadline, cancellable, &why)) != NULL)
        pyx_exec_run_on_top(outer, j); /* takes the GIL itself, gives it back */
    pthread_mutex_lock(&c->wake.mu);
    for (int i = 0; i < c->nqs; i++)
        if (c->qs[i] == q) { /* one entry of this queue's: which one does not matter */
            c->qs[i] = c->qs[--c->nqs];
            break;
        }
    pthread_mutex_unlock(&c->wake.mu);
    return why;
}

static int chan_id(PyObject *arg, long long *id)
{
    *id = PyLong_AsLongLong(arg);
    return *id == -1 && PyErr_Occurred() ? -1 : 0;
}

/* _chan_recv(id, timeout): (msg,) once one comes, None at the timeout
 * (seconds; None: none), ChannelClosed once closed and empty. Waits
 * without the GIL; a cancel of the request (its caller's timeout) ends
 * the wait with KeyboardInterrupt. */
static PyObject *chan_recv(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long id, ns = -1;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_chan_recv(id, timeout)");
        return NULL;
    }
    if (chan_id(args[0], &id) < 0 || (args[1] != Py_None && pyx_seconds_ns(args[1], &ns) < 0))
        return NULL;
    pyx_chan *c = chan_get(id); /* a reference, put below */
    if (c == NULL)
        return closed_error(module, id);
    int cancellable = pyx_wait_begin();
    if (cancellable < 0) {
        chan_put(c);
        return NULL;
    }
    take t = {c, NULL, 0, 0, 0};
    long long deadline = ns < 0 ? -1 : pyx_now_ns() + ns;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = wait_serving(c, &t, deadline, cancellable);
    if (rc < 0) /* not an executor's thread within a request */
        rc = pyx_wait(&c->wake, deadline, take_ready, &t, cancellable);
    take_done(&t);
    Py_END_ALLOW_THREADS
    PyObject *res;
    if (t.msg != NULL)
        res = message(module, c, t.msg); /* a message taken wins over a cancel */
    else if (rc == PYX_WAIT_READY)
        res = closed_error(module, id);
    else if (rc == PYX_WAIT_CANCELLED) {
        pyx_interrupted();
        res = NULL;
    } else
        res = Py_NewRef(Py_None);
    chan_put(c);
    return res;
}

/* _chan_try(id): (msg,), None when empty, ChannelClosed once closed and
 * empty. */
static PyObject *chan_try(PyObject *module, PyObject *arg)
{
    long long id;
    if (chan_id(arg, &id) < 0)
        return NULL;
    pyx_chan *c = chan_get(id); /* a reference, put below */
    if (c == NULL)
        return closed_error(module, id);
    take t = {c, NULL, 0, 0, 0};
    pthread_mutex_lock(&c->wake.mu);
    int got = take_ready(&t);
    pthread_mutex_unlock(&c->wake.mu);
    if (t.ack_count > 0 || t.unlist) {
        Py_BEGIN_ALLOW_THREADS /* a write that may wait for the pipe */
        take_done(&t);
        Py_END_ALLOW_THREADS
    }
    PyObject *res = t.msg != NULL ? message(module, c, t.msg) : got ? closed_error(module, id) : Py_NewRef(Py_None);
    chan_put(c);
    return res;
}

/* _chan_watch(id, fd) / _chan_unwatch(id, fd): an eventfd that a message
 * or the close makes readable (async_receive). watch: False when the
 * channel is gone or has PYX_CHAN_FDS watchers. */
static PyObject *chan_watch_(PyObject *const *args, Py_ssize_t nargs, int add)
{
    long long id, fd;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_chan_watch(id, fd)");
        return NULL;
    }
    if (chan_id(args[0], &id) < 0 || chan_id(args[1], &fd) < 0)
        return NULL;
    pyx_chan *c = chan_get(id);
    if (c == NULL)
        Py_RETURN_FALSE;
    int ok = 0;
    pthread_mutex_lock(&c->wake.mu);
    if (add && c->nfds < PYX_CHAN_FDS) {
        c->fds[c->nfds++] = (int)fd;
        ok = 1;
    } else if (!add) {
        for (int i = 0; i < c->nfds; i++)
            if (c->fds[i] == (int)fd) {
                c->fds[i] = c->fds[--c->nfds];
                ok = 1;
                break;
            }
    }
    pthread_mutex_unlock(&c->wake.mu);
    chan_put(c);
    return PyBool_FromLong(ok);
}

static PyObject *chan_watch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return chan_watch_(args, nargs, 1);
}

static PyObject *chan_unwatch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return chan_watch_(args, nargs, 0);
}

static PyObject *chan_count(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(pyx_chan_count());
}

static PyMethodDef chan_methods[] = {
    {"_chan_recv", (PyCFunction)(void (*)(void))chan_recv, METH_FASTCALL, "_chan_recv(id, timeout): see Channel"},
    {"_chan_try", chan_try, METH_O, "_chan_try(id): see Channel"},
    {"_chan_watch", (PyCFunction)(void (*)(void))chan_watch, METH_FASTCALL, "_chan_watch(id, fd): see Channel"},
    {"_chan_unwatch", (PyCFunction)(void (*)(void))chan_unwatch, METH_FASTCALL, "_chan_unwatch(id, fd)"},
    {"_chan_count", chan_count, METH_NOARGS, "_chan_count(): channels in the sidecar"},
    {NULL, NULL, 0, NULL},
};

int pyx_channel_add_functions(PyObject *module) { return PyModule_AddFunctions(module, chan_methods); }
