/* run.c: one request run in a context (run.h): call, eval or exec, the
 * result or the exception as a term, the traceback. Holds the GIL of the
 * context's interpreter from pyx_run's RestoreThread to its SaveThread;
 * nothing here calls into Go. */
#include "run.h"

#include <string.h>

#include "atoms.h"
#include "current.h"
#include "env.h"
#include "etfw.h"
#include "task.h"

/* Eval sources compiled and kept per context, up to this many. */
#define EVAL_CACHE_MAX 512

/* ---- results ---- */

/* Writes {error, {'Name', <<"message">>}} for the pending exception and
 * clears it. Never fails but for lack of memory, when it writes less. */
static void put_exception(pyx_buf *out)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *name = "Exception";
    if (type != NULL) {
        const char *full = ((PyTypeObject *)type)->tp_name;
        const char *dot = strrchr(full, '.');
        name = dot ? dot + 1 : full;
    }
    PyObject *s = value ? PyObject_Str(value) : NULL;
    if (s == NULL)
        PyErr_Clear();
    Py_ssize_t n = 0;
    const char *msg = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (msg == NULL) {
        PyErr_Clear();
        msg = "";
        n = 0;
    }
    /* Extensions that refuse sub-interpreters: say where they do import. */
    PyObject *hint = NULL;
    if (type != NULL && PyErr_GivenExceptionMatches(type, PyExc_ImportError) &&
        strstr(msg, "subinterpreter") != NULL) {
        hint = PyUnicode_FromFormat(
            "%s; this extension refuses sub-interpreters: call it in a worker context "
            "(py_context_router:start_pool(Name, N, worker), py:register_pool(Name, Module))",
            msg);
        const char *h = hint ? PyUnicode_AsUTF8AndSize(hint, &n) : NULL;
        if (h != NULL)
            msg = h;
        else
            PyErr_Clear();
    }
    if (strlen(name) > 255)
        name = "Exception";
    /* The class name becomes an atom: past the sidecar's budget of new
     * atoms (atoms.h), the nearest base class whose name is known (the
     * built-in ones are), else Exception. */
    if (type != NULL && pyx_atoms_admit(name, strlen(name)) != 1) {
        const char *base = "Exception";
        PyObject *mro = ((PyTypeObject *)type)->tp_mro; /* borrowed */
        for (Py_ssize_t i = 1; mro != NULL && i < PyTuple_GET_SIZE(mro); i++) {
            const char *full = ((PyTypeObject *)PyTuple_GET_ITEM(mro, i))->tp_name;
            const char *d = strrchr(full, '.');
            const char *b = d ? d + 1 : full;
            if (strlen(b) <= 255 && pyx_atoms_admit(b, strlen(b)) == 1) {
                base = b;
                break;
            }
        }
        name = base;
    }
    (void)(pyx_etf_tuple(out, 2) < 0 || pyx_etf_atom(out, "error") < 0 || pyx_etf_tuple(out, 2) < 0 ||
           pyx_etf_atom(out, name) < 0 || pyx_etf_binary(out, msg, (size_t)n) < 0);
    Py_XDECREF(hint);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* A result that is an erlang.ScheduleMarker (API.md section 6) stands for
 * the result of what it names: marker._resolve() runs that, and the
 * markers it returns in turn (py/erlang.py). Any other result costs one
 * comparison of its type. New reference, or NULL with an exception;
 * result is borrowed. */
static PyObject *resolved(pyx_ctx *c, PyObject *result)
{
    if (!Py_IS_TYPE(result, (PyTypeObject *)c->marker_type))
        return Py_NewRef(result);
    return PyObject_CallMethod(result, "_resolve", NULL);
}

/* Writes {ok, Result}, or the conversion's error if Result has no term.
 * Steals nothing: result is borrowed. */
static void put_ok(pyx_ctx *c, PyObject *result, pyx_buf *out)
{
    size_t start = out->len;
    PyObject *value = resolved(c, result); /* owned */
    if (value != NULL && pyx_etf_tuple(out, 2) == 0 && pyx_etf_atom(out, "ok") == 0 &&
        pyx_to_etf(&c->types, value, out) == 0) {
        Py_DECREF(value);
        return;
    }
    Py_XDECREF(value);
    out->len = start;
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    put_exception(out);
}

/* ---- requests ---- */

/* Resolves Module.Function (Function may be dotted). New reference or
 * NULL with an exception. module and func are borrowed str objects. */
static PyObject *lookup(PyObject *globals, PyObject *module, PyObject *func)
{
    PyObject *obj, *parts = NULL;
    Py_ssize_t n = 1, i = 0;
    PyObject *first = func; /* borrowed */
    /* Most functions are not dotted: no split then. */
    if (PyUnicode_FindChar(func, '.', 0, PyUnicode_GET_LENGTH(func), 1) != -1) {
        PyObject *dot = PyUnicode_FromString(".");
        parts = dot ? PyUnicode_Split(func, dot, -1) : NULL;
        Py_XDECREF(dot);
        if (parts == NULL)
            return NULL;
        n = PyList_GET_SIZE(parts);
        first = PyList_GET_ITEM(parts, 0);
    }
    if (PyUnicode_CompareWithASCIIString(module, "__main__") == 0) {
        obj = PyDict_GetItemWithError(globals, first); /* borrowed */
        if (obj == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_NameError, "name '%U' is not defined in this context's __main__", first);
            Py_XDECREF(parts);
            return NULL;
        }
        Py_INCREF(obj);
        i = 1;
    } else {
        /* An imported module straight from sys.modules; the import
         * machinery only for the first call. */
        obj = PyImport_GetModule(module);
        if (obj == NULL && !PyErr_Occurred())
            obj = PyImport_Import(module);
    }
    for (; obj != NULL && i < n; i++) {
        PyObject *next = PyObject_GetAttr(obj, parts ? PyList_GET_ITEM(parts, i) : first);
        Py_DECREF(obj);
        obj = next;
    }
    Py_XDECREF(parts);
    return obj;
}

/* {M, F, Args, Kwargs} or {M, F, Args, Kwargs, ref}: with ref, the result
 * is kept in c for Erlang (env.h) and its number returned instead. */
static PyObject *do_call(pyx_ctx *c, PyObject *globals, PyObject *req)
{
    PyObject *module, *func, *args, *kwargs, *ret = NULL;
    if (!PyArg_ParseTuple(req, "UUO!O!|U:call", &module, &func, &PyList_Type, &args, &PyDict_Type, &kwargs, &ret))
        return NULL;
    if (ret != NULL && PyUnicode_CompareWithASCIIString(ret, "spawn") == 0)
        ret = NULL; /* a task's: see pyx_run */
    else if (ret != NULL && PyUnicode_CompareWithASCIIString(ret, "ref") != 0) {
        PyErr_SetString(PyExc_ValueError, "call: the fifth element must be ref (or, for a task, spawn)");
        return NULL;
    }
    PyObject *fn = lookup(globals, module, func);
    if (fn == NULL)
        return NULL;
    PyObject *tuple = PyList_AsTuple(args);
    PyObject *res = tuple ? PyObject_Call(fn, tuple, PyDict_GET_SIZE(kwargs) ? kwargs : NULL) : NULL;
    Py_XDECREF(tuple);
    Py_DECREF(fn);
    if (res != NULL && ret != NULL) {
        long long n = pyx_ref_new(c, res);
        Py_SETREF(res, n < 0 ? NULL : PyLong_FromLongLong(n));
    }
    return res;
}

/* Compiles src, through the context's cache for eval. New reference. */
static PyObject *compiled(pyx_ctx *c, PyObject *src, int start)
{
    PyObject *code = NULL;
    if (start == Py_eval_input) {
        code = PyDict_GetItemWithError(c->eval_cache, src); /* borrowed */
        if (code != NULL) {
            Py_INCREF(code);
            return code;
        }
        if (PyErr_Occurred())
            return NULL;
    }
    const char *s = PyUnicode_AsUTF8(src);
    if (s == NULL)
        return NULL;
    code = Py_CompileString(s, start == Py_eval_input ? "<eval>" : "<exec>", start);
    if (code != NULL && start == Py_eval_input) {
        if (PyDict_GET_SIZE(c->eval_cache) >= EVAL_CACHE_MAX)
            PyDict_Clear(c->eval_cache);
        if (PyDict_SetItem(c->eval_cache, src, code) < 0)
            PyErr_Clear();
    }
    return code;
}

static PyObject *do_eval(pyx_ctx *c, PyObject *globals, PyObject *req)
{
    PyObject *src, *locals;
    if (!PyArg_ParseTuple(req, "UO!:eval", &src, &PyDict_Type, &locals))
        return NULL;
    PyObject *code = compiled(c, src, Py_eval_input);
    if (code == NULL)
        return NULL;
    PyObject *res = PyEval_EvalCode(code, globals, PyDict_GET_SIZE(locals) ? locals : globals);
    Py_DECREF(code);
    return res;
}

static PyObject *do_exec(pyx_ctx *c, PyObject *globals, PyObject *req)
{
    PyObject *src;
    if (!PyArg_ParseTuple(req, "U:exec", &src))
        return NULL;
    PyObject *code = compiled(c, src, Py_file_input);
    if (code == NULL)
        return NULL;
    PyObject *res = PyEval_EvalCode(code, globals, globals);
    Py_DECREF(code);
    return res;
}

/* Appends the formatted traceback of the pending exception to out, when it
 * has one (it was raised in Python code); the exception stays pending. An
 * interrupt's traceback is left out: nobody waits for that request. */
static void put_traceback(pyx_buf *out)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && !PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt)) {
        PyObject *mod = PyImport_ImportModule("traceback");
        PyObject *lines = mod ? PyObject_CallMethod(mod, "format_exception", "OOO", type, value, tb) : NULL;
        PyObject *sep = lines ? PyUnicode_FromString("") : NULL;
        PyObject *text = sep ? PyUnicode_Join(sep, lines) : NULL;
        Py_ssize_t n = 0;
        const char *s = text ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
        if (s != NULL)
            pyx_buf_append(out, s, (size_t)n);
        else
            PyErr_Clear(); /* no traceback, but the error itself still goes back */
        Py_XDECREF(text);
        Py_XDECREF(sep);
        Py_XDECREF(lines);
        Py_XDECREF(mod);
    }
    PyErr_Restore(type, value, tb);
}

/* The globals a request runs with (borrowed; NULL with an exception): a
 * nested request's are those of the request it runs on top of, in this
 * context; else its caller's environment; without a caller, __main__. */
static PyObject *globals_for(pyx_ctx *c, pyx_caller *who)
{
    if (who->nested && c->env != NULL)
        return c->env; /* and c->env_pid stays */
    if (who->len == 0) {
        c->env_pid = NULL;
        return c->globals;
    }
    PyObject *env = pyx_env_for(c, who->pid, who->len, &who->created);
    c->env_pid = env != NULL ? c->env_key : NULL;
    return env;
}

void pyx_run(pyx_ctx *c, long long seq, pyx_caller *who, int op, const unsigned char *payload, size_t len,
             pyx_buf *out, pyx_buf *traceback)
{
    PyEval_RestoreThread(c->ex->ts); /* GIL held from here ... */
    long long outer = c->ex->current; /* a request waiting in erlang.call */
    PyObject *outer_env = c->env;     /* and its globals, if it is in c */
    PyObject *outer_pid = c->env_pid;
    c->ex->current = seq;
    pyx_etf_version(out);

    PyObject *req = NULL, *res = NULL;
    PyObject *globals = globals_for(c, who); /* borrowed */
    c->env = globals;
    size_t pos = 1;
    if (globals == NULL) {
        /* no environment: out of memory; the error goes back */
    } else if (len < 1 || payload[0] != ETF_VERSION) {
        PyErr_SetString(PyExc_ValueError, "request payload is not a versioned term");
    } else if ((req = pyx_from_etf(&c->types, payload, len, &pos)) != NULL) {
        if (!PyTuple_Check(req))
            PyErr_SetString(PyExc_TypeError, "request payload is not a tuple");
        else if (op == PYX_CALL || op == PYX_TASK)
            res = do_call(c, globals, req);
        else if (op == PYX_EVAL)
            res = do_eval(c, globals, req);
        else
            res = do_exec(c, globals, req);
    }
    /* a task {M, F, A, K, spawn}: nobody waits, its failure is logged */
    int spawn = op == PYX_TASK && req != NULL && PyTuple_Check(req) && PyTuple_GET_SIZE(req) == 5;
    who->unwatched = spawn;
    int deferred = op == PYX_TASK && res != NULL ? pyx_task_defer(c, res, spawn) : 0;
    if (deferred != 0)
        Py_CLEAR(res); /* -1: its exception is the answer */
    if (deferred > 0) {
        out->len = 0; /* the task answers when it ends */
    } else if (res == NULL) {
        put_traceback(traceback);
        put_exception(out);
    } else if (op == PYX_EXEC)
        pyx_etf_atom(out, "ok");
    else
        put_ok(c, res, out);
    Py_XDECREF(res);
    Py_XDECREF(req);

    c->ex->current = outer;
    c->env = outer_env;
    c->env_pid = outer_pid;
    /* An interrupt that came too late for this request must not hit the
     * next one. */
    PyThreadState_SetAsyncExc(c->ex->thread_id, NULL);
    PyErr_Clear();
    PyEval_SaveThread(); /* ... to here */
}

void pyx_run_ok(pyx_ctx *c, PyObject *res, pyx_buf *out) { put_ok(c, res, out); }

void pyx_run_error(pyx_buf *traceback, pyx_buf *out)
{
    put_traceback(traceback);
    put_exception(out);
}

/* Raises KeyboardInterrupt, a BaseException: code that catches Exception
 * in its loop cannot swallow it. */
int pyx_interrupt(pyx_exec *ex, long long seq)
{
    /* A thread state of our own in ex's interpreter, for this call only. */
    PyThreadState *ts = PyThreadState_New(ex->interp);
    if (ts == NULL)
        return -1;
    PyEval_RestoreThread(ts); /* waits for the interpreter's GIL */
    int hit = 0;
    if (ex->current == seq && ex->interrupted != seq) { /* once per cancel (run.h) */
        hit = PyThreadState_SetAsyncExc(ex->thread_id, PyExc_KeyboardInterrupt) > 0;
        if (hit)
            ex->interrupted = seq;
    }
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent(); /* and releases the GIL */
    return hit;
}

/* Whether pyx_interrupt's KeyboardInterrupt waits in this thread to be
 * raised at its next bytecode (CPython has no function that says). */
static int async_pending(void) { return PyThreadState_Get()->async_exc != NULL; }

int pyx_wait_begin(void)
{
    pyx_job *j = pyx_current_job();
    if (j == NULL)
        return 0;
    if (!pyx_job_cancelled(j))
        return 1;
    pyx_exec *ex = j->ctx->ex;
    if (ex->interrupted == ex->current && !async_pending())
        return 0; /* raised already: this wait is in an except or finally block */
    pyx_interrupted();
    return -1;
}

void pyx_interrupted(void)
{
    pyx_ctx *c = pyx_current_ctx();
    if (c != NULL) {
        c->ex->interrupted = c->ex->current;
        if (async_pending())
            PyThreadState_SetAsyncExc(c->ex->thread_id, NULL);
    }
    PyErr_SetNone(PyExc_KeyboardInterrupt);
}
