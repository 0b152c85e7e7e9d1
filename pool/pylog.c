/* pylog.c: sys.stdout and sys.stderr as log sinks (pylog.h).
 *
 * A sink is a small C object per stream and interpreter (a heap type, as
 * own-GIL interpreters share no objects): write(str) appends the text's
 * UTF-8 to a buffer and sends what ends in a newline, at once, as one
 * '$log' packet {Level, Ctx, Text} (several lines of one write go
 * together; the last newline is dropped, the logger adds its own). A
 * partial line goes on flush(), when it reaches PARTIAL_MAX bytes, or
 * when output of another context comes. Ctx is the context of the
 * request running on the thread, else the interpreter's home context.
 *
 * Every method runs with the interpreter's GIL; the mutex is there for
 * free-threaded builds. The GIL stays held while a packet is written: a
 * full pipe (the BEAM reads it whatever Python does) blocks this
 * interpreter's other threads for that long, never a deadlock. */
#include "pylog.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "current.h"
#include "log.h"
#include "pysrc.h"

#define PARTIAL_MAX (8 * 1024) /* a partial line this long goes out */
#define PACKET_MAX (64 * 1024) /* lines beyond this go in another packet */

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    const char *level; /* "notice" or "warning" */
    long long home;    /* atomic: context for other threads, 0 none */
    long long pending_ctx; /* under mu: the context of buf's text */
    pyx_buf buf;           /* under mu: a partial line */
} sink;

/* Sends text[0..n) as one packet, without a final newline. Before any
 * request has run there is no output yet: the text goes to fd 2 then
 * (the sidecar's log pipe). Under s->mu. */
static void emit(sink *s, long long ctx, const char *text, size_t n)
{
    if (n > 0 && text[n - 1] == '\n')
        n--;
    pyx_out *out = pyx_current_output();
    if (out == NULL) {
        ssize_t w = write(2, text, n);
        w = write(2, "\n", 1);
        (void)w;
        return;
    }
    /* the caller of the request running here, if the text is its context's */
    const pyx_job *j = pyx_current_job();
    int mine = j != NULL && j->ctx_id == ctx && j->caller_len > 0;
    (void)pyx_out_log(out, s->level, ctx, mine ? j->data + j->caller_off : NULL, mine ? j->caller_len : 0, text, n);
}

/* Sends the complete lines at the start of s->buf, in packets of up to
 * PACKET_MAX bytes (or one longer line), then the rest if it is
 * PARTIAL_MAX bytes or more (or all of it if all). Under s->mu. */
static void drain(sink *s, int all)
{
    const char *p = (const char *)s->buf.data;
    size_t n = s->buf.len;
    while (n > 0) {
        size_t window = n < PACKET_MAX ? n : PACKET_MAX;
        const char *nl = memrchr(p, '\n', window);
        if (nl == NULL && n > window)
            nl = memchr(p + window, '\n', n - window);
        size_t take = nl != NULL ? (size_t)(nl - p) + 1 : (all || n >= PARTIAL_MAX) ? n : 0;
        if (take == 0)
            break;
        emit(s, s->pending_ctx, p, take);
        p += take;
        n -= take;
    }
    memmove(s->buf.data, p, n);
    s->buf.len = n;
}

/* The context whose output this is. GIL held. */
static long long current_ctx(sink *s)
{
    pyx_ctx *c = pyx_current_ctx();
    return c != NULL ? c->id : __atomic_load_n(&s->home, __ATOMIC_ACQUIRE);
}

static PyObject *sink_write(PyObject *self, PyObject *arg)
{
    sink *s = (sink *)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be str, not %s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    PyObject *enc = NULL; /* owned, only for text that is not valid UTF-8 */
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &n);
    if (text == NULL) { /* lone surrogates: escaped rather than lost */
        PyErr_Clear();
        enc = PyUnicode_AsEncodedString(arg, "utf-8", "backslashreplace");
        if (enc == NULL)
            return NULL;
        text = PyBytes_AS_STRING(enc);
        n = PyBytes_GET_SIZE(enc);
    }
    long long ctx = current_ctx(s);
    int oom = 0;
    pthread_mutex_lock(&s->mu);
    if (s->buf.len > 0 && s->pending_ctx != ctx)
        drain(s, 1); /* another context's partial line goes first */
    s->pending_ctx = ctx;
    if (pyx_buf_append(&s->buf, text, (size_t)n) < 0)
        oom = 1;
    else if (memchr(text, '\n', (size_t)n) != NULL || s->buf.len >= PARTIAL_MAX)
        drain(s, 0);
    pthread_mutex_unlock(&s->mu);
    Py_XDECREF(enc);
    if (oom)
        return PyErr_NoMemory();
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *sink_flush(PyObject *self, PyObject *unused)
{
    (void)unused;
    sink *s = (sink *)self;
    pthread_mutex_lock(&s->mu);
    drain(s, 1);
    pthread_mutex_unlock(&s->mu);
    Py_RETURN_NONE;
}

static void sink_dealloc(PyObject *self)
{
    sink *s = (sink *)self;
    PyTypeObject *tp = Py_TYPE(self);
    pyx_buf_free(&s->buf);
    pthread_mutex_destroy(&s->mu);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef sink_methods[] = {
    {"write", sink_write, METH_O, "write(text): logs its complete lines; returns len(text)"},
    {"flush", sink_flush, METH_NOARGS, "flush(): logs the partial line held"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot sink_slots[] = {
    {Py_tp_dealloc, sink_dealloc},
    {Py_tp_methods, sink_methods},
    {0, NULL},
};

static PyType_Spec sink_spec = {
    .name = "erlang._LogSink",
    .basicsize = sizeof(sink),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = sink_slots,
};

static PyObject *new_sink(PyObject *type, const char *level)
{
    sink *s = PyObject_New(sink, (PyTypeObject *)type); /* takes a type reference */
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->level = level;
    s->home = 0;
    s->pending_ctx = 0;
    s->buf = (pyx_buf){0};
    return (PyObject *)s;
}

int pyx_stdio_install(pyx_stdio *io)
{
    int rc = -1;
    PyObject *type = PyType_FromSpec(&sink_spec);
    PyObject *ns = PyDict_New(), *res = NULL;
    PyObject *out = type ? new_sink(type, "notice") : NULL; /* shows by default */
    PyObject *err = type ? new_sink(type, "warning") : NULL;
    if (out == NULL || err == NULL || ns == NULL ||
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto done;
    /* the Python face of a sink: py/logstream.py */
    PyObject *fn = pyx_py_run(PYX_PY_LOGSTREAM, ns) == 0 ? PyDict_GetItemString(ns, "_install") : NULL; /* borrowed */
    res = fn ? PyObject_CallFunctionObjArgs(fn, out, err, NULL) : NULL;
    if (res == NULL)
        goto done;
    io->sink[0] = Py_NewRef(out);
    io->sink[1] = Py_NewRef(err);
    rc = 0;
done:
    Py_XDECREF(res);
    Py_XDECREF(ns);
    Py_XDECREF(out);
    Py_XDECREF(err);
    Py_XDECREF(type);
    return rc;
}

void pyx_stdio_home(pyx_stdio *io, long long id, int set)
{
    for (int i = 0; i < 2; i++) {
        sink *s = (sink *)io->sink[i];
        if (s == NULL)
            continue;
        if (set)
            __atomic_store_n(&s->home, id, __ATOMIC_RELEASE);
        else {
            long long expected = id;
            __atomic_compare_exchange_n(&s->home, &expected, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        }
    }
}

void pyx_stdio_flush(pyx_stdio *io)
{
    for (int i = 0; i < 2; i++)
        if (io->sink[i] != NULL) {
            PyObject *r = sink_flush(io->sink[i], NULL);
            Py_XDECREF(r);
        }
}
