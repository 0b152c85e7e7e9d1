/* interp.c: the main interpreter, executors (a thread state on a locked OS
 * thread) and contexts (a __main__ namespace), and running requests. */
#include "interp.h"

#include <stdlib.h>
#include <string.h>

PyMODINIT_FUNC pyx_erlang_init(void);

/* Eval sources compiled and kept per context, up to this many. */
#define EVAL_CACHE_MAX 512

int pyx_mode(void)
{
#if defined(Py_GIL_DISABLED)
    return PYX_FREE_THREADED;
#elif PY_VERSION_HEX >= 0x030C0000
    return PYX_SUBINTERP;
#else
    return PYX_MULTI_EXECUTOR;
#endif
}

const char *pyx_version(void) { return Py_GetVersion(); }

static char *dup_message(const char *prefix, const char *msg)
{
    size_t n = strlen(prefix) + strlen(msg) + 3;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s: %s", prefix, msg);
    return s;
}

/* The pending Python exception as a malloc'd message; clears it. */
static char *take_error(const char *prefix)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    char *out = dup_message(prefix, msg ? msg : "unknown error");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return out;
}

/* Start-up code run in every interpreter, in a private namespace: puts the
 * configured paths first on sys.path and, on 3.12 sub-interpreters, makes
 * decimal and datetime use their pure-Python versions (the C ones corrupt
 * the heap there, PLATFORM.md). */
static const char boot_src[] =
    "import sys\n"
    "def _boot(paths, guard):\n"
    "    for p in reversed([p for p in paths.split('\\n') if p]):\n"
    "        if p not in sys.path:\n"
    "            sys.path.insert(0, p)\n"
    "    if guard:\n"
    "        class _PureDecimalDatetime:\n"
    "            @staticmethod\n"
    "            def find_spec(name, path=None, target=None):\n"
    "                if name in ('_decimal', '_datetime'):\n"
    "                    raise ModuleNotFoundError(name, name=name)\n"
    "                return None\n"
    "        sys.meta_path.insert(0, _PureDecimalDatetime)\n";

/* The main interpreter's sys.stdout and sys.stderr, shared by its
 * executors; a sub-interpreter's are its executor's own. */
static pyx_stdio main_stdio;

/* Runs boot_src with the GIL of the current interpreter held, then points
 * sys.stdout and sys.stderr at the Erlang logger (pylog.c). */
static int boot(const char *paths, int guard, pyx_stdio *io)
{
    if (pyx_stdio_install(io) < 0)
        return -1;
    PyObject *ns = PyDict_New();
    if (ns == NULL)
        return -1;
    int rc = -1;
    PyObject *r = NULL, *fn = NULL, *res = NULL;
    if (PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto done;
    r = PyRun_String(boot_src, Py_file_input, ns, ns);
    if (r == NULL)
        goto done;
    fn = PyDict_GetItemString(ns, "_boot"); /* borrowed */
    if (fn == NULL)
        goto done;
    res = PyObject_CallFunction(fn, "si", paths, guard);
    rc = res ? 0 : -1;
done:
    Py_XDECREF(res);
    Py_XDECREF(r);
    Py_DECREF(ns);
    return rc;
}

char *pyx_init_main(const char *paths, const char *executable)
{
    if (PyImport_AppendInittab("erlang", pyx_erlang_init) < 0)
        return dup_message("init", "cannot register the erlang module");
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* Go owns every signal */
    config.parse_argv = 0;
    config.faulthandler = 0;
    PyStatus st = PyStatus_Ok();
    if (executable != NULL && executable[0] != '\0')
        st = PyConfig_SetBytesString(&config, &config.executable, executable);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        return dup_message("init", st.err_msg ? st.err_msg : "Py_InitializeFromConfig failed");
    /* We hold the main GIL here. */
    char *err = NULL;
    if (boot(paths, 0, &main_stdio) < 0)
        err = take_error("boot");
    PyEval_SaveThread(); /* drop the main GIL for good on this thread */
    return err;
}

pyx_exec *pyx_exec_new(int own_interp, const char *paths, char **err)
{
    pyx_exec *ex = calloc(1, sizeof *ex);
    if (ex == NULL) {
        *err = dup_message("executor", "out of memory");
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (own_interp) {
        /* Hold a main-interpreter thread state first, then make the
         * sub-interpreter on this thread (PLATFORM.md). */
        PyGILState_STATE g = PyGILState_Ensure();
        PyThreadState *main_ts = PyThreadState_Get();
        PyInterpreterConfig cfg = {
            .use_main_obmalloc = 0,
            .allow_fork = 0, /* os.fork in a threaded process: refused */
            .allow_exec = 1, /* subprocess works */
            .allow_threads = 1,
            .allow_daemon_threads = 1,
            .check_multi_interp_extensions = 1,
            .gil = PyInterpreterConfig_OWN_GIL,
        };
        PyThreadState *ts = NULL;
        PyStatus st = Py_NewInterpreterFromConfig(&ts, &cfg);
        if (PyStatus_Exception(st)) {
            PyThreadState_Swap(main_ts);
            PyGILState_Release(g);
            *err = dup_message("sub-interpreter", st.err_msg ? st.err_msg : "creation failed");
            free(ex);
            return NULL;
        }
        /* ts is current and holds the new interpreter's GIL. */
        ex->ts = ts;
        ex->interp = PyThreadState_GetInterpreter(ts);
        ex->thread_id = PyThread_get_thread_ident();
        int guard = PY_VERSION_HEX < 0x030D0000;
        ex->stdio = calloc(1, sizeof *ex->stdio);
        if (ex->stdio == NULL)
            PyErr_NoMemory();
        if (ex->stdio == NULL || boot(paths, guard, ex->stdio) < 0) {
            *err = take_error("boot");
            PyEval_SaveThread();
            free(ex->stdio); /* its sinks, and the interpreter, are leaked: never finalised */
            free(ex);
            return NULL;
        }
        PyEval_SaveThread();
        /* Back on the main thread state to release what Ensure took. */
        PyEval_RestoreThread(main_ts);
        PyGILState_Release(g);
        return ex;
    }
#else
    (void)paths;
    (void)own_interp;
#endif
    PyInterpreterState *main_interp = PyInterpreterState_Main();
    PyThreadState *ts = PyThreadState_New(main_interp);
    if (ts == NULL) {
        *err = dup_message("executor", "cannot create a thread state");
        free(ex);
        return NULL;
    }
    ex->ts = ts;
    ex->interp = main_interp;
    ex->stdio = &main_stdio;
    ex->thread_id = PyThread_get_thread_ident();
    return ex;
}

/* Drops the context's references (any may be NULL); GIL held. */
static void ctx_release(pyx_ctx *c)
{
    Py_CLEAR(c->globals);
    Py_CLEAR(c->eval_cache);
    Py_CLEAR(c->types.pid_type);
    Py_CLEAR(c->types.ref_type);
    Py_CLEAR(c->types.opaque_type);
    Py_CLEAR(c->types.atom_type);
}

pyx_ctx *pyx_ctx_new(pyx_exec *ex, long long id, char **err)
{
    pyx_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        *err = dup_message("context", "out of memory");
        return NULL;
    }
    c->ex = ex;
    c->id = id;
    PyEval_RestoreThread(ex->ts);
    PyObject *erl = NULL;
    if (ex->interp != PyInterpreterState_Main()) {
        PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
        c->globals = main ? PyModule_GetDict(main) : NULL;
        Py_XINCREF(c->globals);
    } else { /* contexts of the main interpreter: a __main__ of their own */
        c->globals = PyDict_New();
        if (c->globals != NULL &&
            (PyDict_SetItemString(c->globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
             PyDict_SetItemString(c->globals, "__name__", PyUnicode_FromString("__main__")) < 0))
            Py_CLEAR(c->globals);
    }
    if (c->globals == NULL)
        goto fail;
    c->eval_cache = PyDict_New();
    erl = PyImport_ImportModule("erlang");
    if (c->eval_cache == NULL || erl == NULL)
        goto fail;
    c->types.pid_type = PyObject_GetAttrString(erl, "Pid");
    c->types.ref_type = PyObject_GetAttrString(erl, "Ref");
    c->types.opaque_type = PyObject_GetAttrString(erl, "Opaque");
    c->types.atom_type = PyObject_GetAttrString(erl, "Atom");
    if (!c->types.pid_type || !c->types.ref_type || !c->types.opaque_type || !c->types.atom_type)
        goto fail;
    pyx_erlang_home(erl, c, 1); /* Python threads of this interpreter call Erlang for c */
    pyx_stdio_home(ex->stdio, c->id, 1); /* and print for c */
    Py_DECREF(erl);
    PyEval_SaveThread();
    return c;
fail:
    *err = take_error("context");
    Py_XDECREF(erl);
    ctx_release(c);
    PyEval_SaveThread();
    free(c);
    return NULL;
}

void pyx_ctx_free(pyx_ctx *c)
{
    PyEval_RestoreThread(c->ex->ts);
    PyObject *erl = PyImport_ImportModule("erlang");
    if (erl != NULL) {
        pyx_erlang_home(erl, c, 0);
        Py_DECREF(erl);
    }
    PyErr_Clear();
    pyx_stdio_flush(c->ex->stdio); /* a partial line left: c's, likely */
    pyx_stdio_home(c->ex->stdio, c->id, 0);
    ctx_release(c);
    PyEval_SaveThread();
    free(c);
}

/* ---- results ---- */

static const unsigned char VERSION = 131;

static int put_atom(pyx_buf *out, const char *name)
{
    unsigned char hdr[2] = {119, (unsigned char)strlen(name)};
    return pyx_buf_append(out, hdr, 2) < 0 || pyx_buf_append(out, name, hdr[1]) < 0 ? -1 : 0;
}

static int put_binary(pyx_buf *out, const char *s, size_t n)
{
    unsigned char hdr[5] = {109, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    return pyx_buf_append(out, hdr, 5) < 0 || pyx_buf_append(out, s, n) < 0 ? -1 : 0;
}

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
    unsigned char tup[3] = {104, 2, 0};
    pyx_buf_append(out, tup, 2);
    put_atom(out, "error");
    pyx_buf_append(out, tup, 2);
    if (strlen(name) > 255)
        name = "Exception";
    put_atom(out, name);
    put_binary(out, msg, (size_t)n);
    Py_XDECREF(hint);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Writes {ok, Result}, or the conversion's error if Result has no term.
 * Steals nothing: result is borrowed. */
static void put_ok(pyx_ctx *c, PyObject *result, pyx_buf *out)
{
    size_t start = out->len;
    unsigned char tup[2] = {104, 2};
    if (pyx_buf_append(out, tup, 2) == 0 && put_atom(out, "ok") == 0 &&
        pyx_to_etf(&c->types, result, out) == 0)
        return;
    out->len = start;
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    put_exception(out);
}

/* ---- requests ---- */

/* Resolves Module.Function (Function may be dotted). New reference or
 * NULL with an exception. module and func are borrowed str objects. */
static PyObject *lookup(pyx_ctx *c, PyObject *module, PyObject *func)
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
        obj = PyDict_GetItemWithError(c->globals, first); /* borrowed */
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

static PyObject *do_call(pyx_ctx *c, PyObject *req)
{
    PyObject *module, *func, *args, *kwargs;
    if (!PyArg_ParseTuple(req, "UUO!O!:call", &module, &func, &PyList_Type, &args, &PyDict_Type, &kwargs))
        return NULL;
    PyObject *fn = lookup(c, module, func);
    if (fn == NULL)
        return NULL;
    PyObject *tuple = PyList_AsTuple(args);
    PyObject *res = tuple ? PyObject_Call(fn, tuple, PyDict_GET_SIZE(kwargs) ? kwargs : NULL) : NULL;
    Py_XDECREF(tuple);
    Py_DECREF(fn);
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

static PyObject *do_eval(pyx_ctx *c, PyObject *req)
{
    PyObject *src, *locals;
    if (!PyArg_ParseTuple(req, "UO!:eval", &src, &PyDict_Type, &locals))
        return NULL;
    PyObject *code = compiled(c, src, Py_eval_input);
    if (code == NULL)
        return NULL;
    PyObject *res = PyEval_EvalCode(code, c->globals, PyDict_GET_SIZE(locals) ? locals : c->globals);
    Py_DECREF(code);
    return res;
}

static PyObject *do_exec(pyx_ctx *c, PyObject *req)
{
    PyObject *src;
    if (!PyArg_ParseTuple(req, "U:exec", &src))
        return NULL;
    PyObject *code = compiled(c, src, Py_file_input);
    if (code == NULL)
        return NULL;
    PyObject *res = PyEval_EvalCode(code, c->globals, c->globals);
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

void pyx_run(pyx_ctx *c, long long seq, int op, const unsigned char *payload, size_t len, pyx_buf *out,
             pyx_buf *traceback)
{
    PyEval_RestoreThread(c->ex->ts); /* GIL held from here ... */
    long long outer = c->ex->current; /* a request waiting in erlang.call */
    c->ex->current = seq;
    pyx_buf_append(out, &VERSION, 1);

    PyObject *req = NULL, *res = NULL;
    size_t pos = 1;
    if (len < 1 || payload[0] != VERSION) {
        PyErr_SetString(PyExc_ValueError, "request payload is not a versioned term");
    } else if ((req = pyx_from_etf(&c->types, payload, len, &pos)) != NULL) {
        if (!PyTuple_Check(req))
            PyErr_SetString(PyExc_TypeError, "request payload is not a tuple");
        else if (op == PYX_CALL)
            res = do_call(c, req);
        else if (op == PYX_EVAL)
            res = do_eval(c, req);
        else
            res = do_exec(c, req);
    }
    if (res == NULL) {
        put_traceback(traceback);
        put_exception(out);
    } else if (op == PYX_EXEC)
        put_atom(out, "ok");
    else
        put_ok(c, res, out);
    Py_XDECREF(res);
    Py_XDECREF(req);

    c->ex->current = outer;
    /* An interrupt that came too late for this request must not hit the
     * next one. */
    PyThreadState_SetAsyncExc(c->ex->thread_id, NULL);
    PyErr_Clear();
    PyEval_SaveThread(); /* ... to here */
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
    if (ex->current == seq) {
        hit = PyThreadState_SetAsyncExc(ex->thread_id, PyExc_KeyboardInterrupt) > 0;
    }
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent(); /* and releases the GIL */
    return hit;
}
