/* erlmod.c: the built-in `erlang` module (erlmod.h): erlang.call, send,
 * sleep, schedule's yield and consume_time_slice.
 *
 * Multi-phase initialisation with per-interpreter GIL support, so every
 * sub-interpreter gets its own copy (PLATFORM.md). The module body is
 * Python source, run in the module's namespace by the exec slot
 * (pysrc.h): the classes that stand for Erlang terms Python has no type
 * for, and the Python face of the calls into Erlang, whose C parts are
 * _call and _send. Every function here holds the GIL on entry and exit;
 * none calls into Go. */
#include "erlmod.h"

#include <math.h>
#include <sched.h>
#include <string.h>

#include "alive.h"
#include "atoms.h"
#include "current.h"
#include "env.h"
#include "erlmod_state.h"
#include "loop.h"
#include "etfw.h"
#include "exec.h"
#include "channel.h"
#include "modtypes.h"
#include "pysrc.h"
#include "run.h"
#include "sleep.h"
#include "stream.h"

static long long next_callback; /* atomic: callback numbers, unique in the process */

/* The module's state, one per interpreter: the context that Python threads
 * of this interpreter call Erlang for (its only one in a sub-interpreter;
 * in the main interpreter, the newest). Read and written with the GIL. */
typedef struct {
    pyx_ctx *home;
} erlang_state;

void pyx_erlang_home(PyObject *module, pyx_ctx *c, int set)
{
    erlang_state *st = PyModule_GetState(module);
    if (st == NULL) {
        PyErr_Clear();
        return;
    }
    if (set)
        st->home = c;
    else if (st->home == c)
        st->home = NULL;
}

/* Appends the version byte and obj's ETF to b. 0, or -1 with an exception. */
static int versioned(const pyx_types *t, PyObject *obj, pyx_buf *b)
{
    if (pyx_etf_version(b) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return pyx_to_etf(t, obj, b);
}

/* Raises what the answer {ok, Value} | {error, {Class, Reason}} says, or
 * returns Value. reply is borrowed. */
static PyObject *answer_value(PyObject *module, PyObject *reply)
{
    if (PyTuple_Check(reply) && PyTuple_GET_SIZE(reply) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(reply, 0))) {
        PyObject *kind = PyTuple_GET_ITEM(reply, 0), *value = PyTuple_GET_ITEM(reply, 1);
        if (PyUnicode_CompareWithASCIIString(kind, "ok") == 0) {
            Py_INCREF(value);
            return value;
        }
        if (PyUnicode_CompareWithASCIIString(kind, "error") == 0 && PyTuple_Check(value) &&
            PyTuple_GET_SIZE(value) == 2) {
            PyObject *error = PyObject_GetAttrString(module, "Error"); /* owned */
            PyObject *exc = error ? PyObject_CallObject(error, value) : NULL;
            if (exc != NULL)
                PyErr_SetObject(error, exc);
            Py_XDECREF(exc);
            Py_XDECREF(error);
            return NULL;
        }
    }
    PyErr_SetString(PyExc_ValueError, "erlang.call: an answer that is neither {ok, _} nor {error, {_, _}}");
    return NULL;
}

/* _call(name, args): asks the BEAM to run the function registered as name
 * with the list of args, and waits for its answer (exec.c: meanwhile the
 * context runs the requests that the function makes back into it). The
 * frame's id is {'$cb', N}, its body {Ctx, Chain, Name, Args}
 * (docs/PROTOCOL.md). Holds the GIL on entry and exit, not while it waits. */
static PyObject *erlang_call(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_call(name: str, args: tuple)");
        return NULL;
    }
    /* On a context's thread, within a request: that request's context and
     * chain. On another thread: the interpreter's home context, no chain. */
    pyx_ctx *ctx = pyx_current_ctx();
    erlang_state *st = PyModule_GetState(module);
    if (ctx == NULL && st != NULL)
        ctx = st->home;
    pyx_out *out = pyx_current_output();
    if (ctx == NULL || out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "erlang.call: no context of this interpreter has run a request");
        return NULL;
    }
    /* The classes to convert with: on another thread the home context may
     * be freed while this call waits without the GIL, so they are taken
     * with references of their own then (modtypes.h), never read from ctx
     * after the wait. */
    pyx_module_types mt;
    if (pyx_module_types_get(module, &mt) < 0) {
        pyx_module_types_put(&mt);
        return NULL;
    }
    long long cb = __atomic_add_fetch(&next_callback, 1, __ATOMIC_RELAXED);
    pyx_buf id = {0}, body = {0}, answer = {0};
    PyObject *res = NULL, *idt = NULL, *bt = NULL, *reply = NULL; /* all owned */
    PyObject *tag = PyObject_CallFunction(mt.t.atom_type, "s", "$cb");
    PyObject *list = PySequence_List(args[1]);
    if (tag == NULL || list == NULL)
        goto done;
    idt = Py_BuildValue("(OL)", tag, cb);
    bt = Py_BuildValue("(LLOO)", ctx->id, pyx_current_chain(), args[0], list);
    if (idt == NULL || bt == NULL || versioned(&mt.t, idt, &id) < 0 || versioned(&mt.t, bt, &body) < 0)
        goto done;

    PyThreadState *ts = PyEval_SaveThread(); /* no GIL from here ... */
    int rc = pyx_exec_callback(out, cb, &id, &body, &answer);
    PyEval_RestoreThread(ts); /* ... to here */
    if (rc == -1) {
        pyx_interrupted(); /* the request was cancelled: KeyboardInterrupt */
        goto done;
    }
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    size_t pos = 1;
    if (answer.len == 0 || answer.data[0] != ETF_VERSION) {
        PyErr_SetString(PyExc_ValueError, "erlang.call: the answer is not a versioned term");
        goto done;
    }
    reply = pyx_from_etf(&mt.t, answer.data, answer.len, &pos);
    if (reply != NULL)
        res = answer_value(module, reply);
done:
    Py_XDECREF(tag);
    Py_XDECREF(list);
    Py_XDECREF(idt);
    Py_XDECREF(bt);
    Py_XDECREF(reply);
    pyx_module_types_put(&mt);
    pyx_buf_free(&id);
    pyx_buf_free(&body);
    pyx_buf_free(&answer);
    return res;
}

/* The `_etf' bytes of an erlang.Pid (new reference), or NULL with an
 * exception. */
static PyObject *pid_bytes(PyObject *pid)
{
    PyObject *etf = PyObject_GetAttrString(pid, "_etf");
    if (etf != NULL && !PyBytes_Check(etf)) {
        PyErr_SetString(PyExc_TypeError, "erlang.Pid._etf must be bytes");
        Py_CLEAR(etf);
    }
    return etf;
}

/* _send(dest, message[, check]), for send: dest is an erlang.Pid, or an
 * erlang.Atom naming a registered process; the port owner sends the
 * message (docs/PROTOCOL.md). Any thread. Like Erlang's `!', it does not
 * wait. With check true and dest a pid that alive.h does not know, it
 * sends nothing and returns the count of exits heard (an int), for send
 * to ask the BEAM and then _alive_add; else None once sent. */
static PyObject *erlang_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_send(dest, message[, check]) takes 2 or 3 arguments");
        return NULL;
    }
    pyx_out *out = pyx_current_output();
    if (out == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "erlang.send: no request has run yet");
        return NULL;
    }
    PyObject *res = NULL, *body = NULL; /* owned */
    pyx_buf data = {0};
    pyx_module_types mt;
    if (pyx_module_types_get(module, &mt) < 0)
        goto done;
    const pyx_types t = mt.t;
    if (!PyObject_TypeCheck(args[0], (PyTypeObject *)t.pid_type) &&
        !PyObject_TypeCheck(args[0], (PyTypeObject *)t.atom_type)) {
        PyErr_Format(PyExc_TypeError, "erlang.send: dest must be an erlang.Pid or erlang.Atom, not %s",
                     Py_TYPE(args[0])->tp_name);
        goto done;
    }
    if (nargs == 3 && PyObject_IsTrue(args[2]) == 1 && PyObject_TypeCheck(args[0], (PyTypeObject *)t.pid_type)) {
        PyObject *pid = pid_bytes(args[0]); /* owned */
        if (pid == NULL)
            goto done;
        /* A loop that sends to one pid: the same bytes object as the last
         * send found alive in this context, and no exit heard since. */
        pyx_ctx *c = pyx_current_ctx();
        uint64_t epoch = 0;
        int fast = c != NULL && c->alive_last == pid && c->alive_epoch == pyx_alive_epoch();
        int known = fast || pyx_alive_known(PyBytes_AS_STRING(pid), (size_t)PyBytes_GET_SIZE(pid), &epoch);
        if (known && !fast && c != NULL) {
            c->alive_epoch = epoch; /* as of the lookup: an exit after it misses */
            Py_INCREF(pid);
            Py_XSETREF(c->alive_last, pid);
        }
        Py_DECREF(pid);
        if (!known) {
            res = PyLong_FromUnsignedLongLong(epoch);
            goto done;
        }
    }
    body = PyTuple_Pack(2, args[0], args[1]);
    if (body == NULL || versioned(&t, body, &data) < 0)
        goto done;
    /* In-band and bounded (output.h): batched with other sends while
     * PYX_SEND_WINDOW batches are out that the port owner has not handled;
     * with the batch full it waits for a credit, without the GIL. */
    int stopped;
    Py_BEGIN_ALLOW_THREADS
    stopped = pyx_out_send_oneway(out, data.data + 1, data.len - 1, pyx_current_cancelled) < 0;
    Py_END_ALLOW_THREADS
    if (stopped) {
        PyErr_SetNone(PyExc_KeyboardInterrupt); /* the request was cancelled */
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    Py_XDECREF(body);
    pyx_module_types_put(&mt);
    pyx_buf_free(&data);
    return res;
}

/* sleep(seconds): sleeps without the context's GIL. On a context's thread
 * it wakes early, with KeyboardInterrupt, when its request is cancelled
 * (a caller's timeout). The wait is time.sleep's (sleep.h). */
static PyObject *erlang_sleep(PyObject *module, PyObject *arg)
{
    (void)module;
    double secs = PyFloat_AsDouble(arg);
    if (secs == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(secs >= 0)) {
        PyErr_SetString(PyExc_ValueError, "erlang.sleep: seconds must be >= 0");
        return NULL;
    }
    if (secs >= 9e9) /* 285 years and more: forever */
        secs = 9e9;
    return pyx_sleep_ns((long long)ceil(secs * 1e9));
}

/* _yield(), for schedule() (py/erlang.py): lets the other threads of this
 * interpreter, and of the machine, run: drops the GIL and yields the CPU
 * once. */
static PyObject *erlang_yield(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    sched_yield();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* consume_time_slice's account, per thread: the request it is for (its
 * seq, 0 for a thread that runs none) and the percent of its slice used. */
static __thread long long slice_seq;
static __thread long slice_used;

/* consume_time_slice(percent): as the NIF 2.x's (enif_consume_timeslice),
 * adds percent (an int, clamped to 1..100) to what the running request
 * used of its slice and returns True once that reaches 100 (and starts a
 * new slice), else False. A hint for code that yields with a schedule
 * marker: the executor is no BEAM scheduler, nothing else is counted. */
static PyObject *erlang_consume_time_slice(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "erlang.consume_time_slice: percent must be an int, not %s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    int overflow;
    long percent = PyLong_AsLongAndOverflow(arg, &overflow);
    if (percent == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0 || percent > 100)
        percent = 100;
    else if (overflow < 0 || percent < 1)
        percent = 1;
    pyx_job *j = pyx_current_job();
    long long seq = j != NULL ? j->seq : 0;
    if (seq != slice_seq) { /* another request: a new slice */
        slice_seq = seq;
        slice_used = 0;
    }
    slice_used += percent;
    if (slice_used < 100)
        Py_RETURN_FALSE;
    slice_used = 0;
    Py_RETURN_TRUE;
}

/* _atom_admit(name): whether erlang.Atom may make name (atoms.h): True when
 * it is known, or new within the sidecar's budget (then counted). A name
 * that can be no atom (over 255 characters, not encodable) is not counted:
 * its conversion fails anyway. */
static PyObject *erlang_atom_admit(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "_atom_admit(name): name must be a str");
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(arg) > 255)
        Py_RETURN_TRUE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL) {
        PyErr_Clear();
        Py_RETURN_TRUE;
    }
    int rc = pyx_atoms_admit(s, (size_t)n);
    if (rc < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(rc);
}

/* _atom_budget(): (max_atoms, spent), for AtomLimitError's message. */
static PyObject *erlang_atom_budget(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue("(LL)", pyx_atoms_max(), pyx_atoms_spent());
}

/* _atom_ask_begin(name): past the budget, whether erlang.Atom should ask
 * the BEAM whether it has name (atoms.h): 2 ask, 1 known, 0 do not. */
static PyObject *erlang_atom_ask_begin(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_ssize_t n;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
    if (s == NULL) {
        PyErr_Clear();
        return PyLong_FromLong(0);
    }
    return PyLong_FromLong(pyx_atoms_ask_begin(s, (size_t)n));
}

/* _atom_ask_end(name, exists): the BEAM's answer. */
static PyObject *erlang_atom_ask_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_atom_ask_end(name, exists)");
        return NULL;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(args[0], &n);
    if (s == NULL)
        return NULL;
    if (pyx_atoms_ask_end(s, (size_t)n, PyObject_IsTrue(args[1]) == 1) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* _alive_add(pid, epoch): the BEAM said pid is alive, when _send counted
 * epoch exits (alive.h). */
static PyObject *erlang_alive_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_alive_add(pid, epoch)");
        return NULL;
    }
    unsigned long long epoch = PyLong_AsUnsignedLongLong(args[1]);
    if (epoch == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    PyObject *pid = pid_bytes(args[0]); /* owned */
    if (pid == NULL)
        return NULL;
    int rc = pyx_alive_add(PyBytes_AS_STRING(pid), (size_t)PyBytes_GET_SIZE(pid), epoch);
    Py_DECREF(pid);
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* _alive_count(): how many pids erlang.send knows alive, for tests. */
static PyObject *erlang_alive_count(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromSize_t(pyx_alive_count());
}

/* _env_count(): how many process-bound environments the context of the
 * request running on this thread has (env.h), for tests; 0 outside one. */
static PyObject *erlang_env_count(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pyx_ctx *c = pyx_current_ctx();
    return PyLong_FromSsize_t(c != NULL ? pyx_env_count(c) : 0);
}

/* The context of the request running on this thread, or NULL with an
 * exception naming what needs it. */
static pyx_ctx *request_ctx(const char *what)
{
    pyx_ctx *c = pyx_current_ctx();
    if (c == NULL)
        PyErr_Format(PyExc_RuntimeError, "%s: no request runs on this thread", what);
    return c;
}

/* _exec_main(code): runs code (str) in the context's own __main__, not in
 * the calling process's environment: py_preload's code, which each new
 * environment then starts with (env.h). */
static PyObject *erlang_exec_main(PyObject *module, PyObject *code)
{
    (void)module;
    pyx_ctx *c = request_ctx("_exec_main");
    if (c == NULL)
        return NULL;
    const char *src = PyUnicode_AsUTF8(code);
    if (src == NULL)
        return NULL;
    PyObject *res = PyRun_String(src, Py_file_input, c->globals, c->globals); /* owned */
    if (res == NULL)
        return NULL;
    Py_DECREF(res);
    Py_RETURN_NONE;
}

/* _ref_get(n): the object of ref n in this context (env.h). */
static PyObject *erlang_ref_get(PyObject *module, PyObject *arg)
{
    (void)module;
    pyx_ctx *c = request_ctx("_ref_get");
    long long n = PyLong_AsLongLong(arg);
    if (c == NULL || (n == -1 && PyErr_Occurred()))
        return NULL;
    return Py_XNewRef(pyx_ref_get(c, n));
}

/* _ref_release(n): releases ref n (KeyError if it is gone already). */
static PyObject *erlang_ref_release(PyObject *module, PyObject *arg)
{
    (void)module;
    pyx_ctx *c = request_ctx("_ref_release");
    long long n = PyLong_AsLongLong(arg);
    if (c == NULL || (n == -1 && PyErr_Occurred()) || pyx_ref_release(c, n) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef erlang_methods[] = {
    {"_ref_get", erlang_ref_get, METH_O, "_ref_get(n): the object of an Erlang-held reference"},
    {"_ref_release", erlang_ref_release, METH_O, "_ref_release(n): releases it"},
    {"_exec_main", erlang_exec_main, METH_O, "_exec_main(code): runs code in the context's __main__"},
    {"_alive_add", (PyCFunction)(void (*)(void))erlang_alive_add, METH_FASTCALL, "_alive_add(pid, epoch): see send"},
    {"_alive_count", erlang_alive_count, METH_NOARGS, "_alive_count(): pids send knows alive"},
    {"_env_count", erlang_env_count, METH_NOARGS, "_env_count(): environments in this context"},
    {"_atom_ask_begin", erlang_atom_ask_begin, METH_O, "_atom_ask_begin(name): see erlang.Atom"},
    {"_atom_ask_end", (PyCFunction)(void (*)(void))erlang_atom_ask_end, METH_FASTCALL,
     "_atom_ask_end(name, exists): see erlang.Atom"},
    {"_atom_admit", erlang_atom_admit, METH_O, "_atom_admit(name): see erlang.Atom"},
    {"_atom_budget", erlang_atom_budget, METH_NOARGS, "_atom_budget(): (max_atoms, spent)"},
    {"_call", (PyCFunction)(void (*)(void))erlang_call, METH_FASTCALL, "_call(name, args): see call"},
    {"_send", (PyCFunction)(void (*)(void))erlang_send, METH_FASTCALL,
     "send(dest, message): sends message to an erlang.Pid (or registered erlang.Atom), without waiting"},
    {"sleep", erlang_sleep, METH_O, "sleep(seconds): sleeps without holding the context's GIL"},
    {"_yield", erlang_yield, METH_NOARGS, "_yield(): lets other threads run, for schedule()"},
    {"consume_time_slice", erlang_consume_time_slice, METH_O,
     "consume_time_slice(percent): True once the request used its time slice (percent 1..100 each call)"},
    {NULL, NULL, 0, NULL},
};


/* Adds the shared-state (erlmod_state.c) and channel (channel.c) functions, then runs the module
 * body in the module's dict (borrowed): the term classes, then the rest. */
static int erlang_exec(PyObject *module)
{
    PyObject *dict = PyModule_GetDict(module);
    if (pyx_state_add_functions(module) < 0 || pyx_channel_add_functions(module) < 0 ||
        pyx_loop_add_functions(module) < 0 || pyx_py_run(PYX_PY_TERMS, dict) < 0 ||
        pyx_py_run(PYX_PY_ERLANG, dict) < 0 || pyx_py_run(PYX_PY_LOOP, dict) < 0 ||
        pyx_stream_add_functions(module) < 0 || pyx_py_run(PYX_PY_CHANNEL, dict) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot erlang_slots[] = {
    {Py_mod_exec, erlang_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef erlang_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "erlang",
    .m_doc = "The BEAM, seen from Python: Erlang term types.",
    .m_size = sizeof(erlang_state), /* zeroed by Python */
    .m_slots = erlang_slots,
    .m_methods = erlang_methods,
};

PyMODINIT_FUNC pyx_erlang_init(void)
{
    return PyModuleDef_Init(&erlang_def);
}
