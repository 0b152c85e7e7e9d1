/* interp.c: the life of interpreters, executors and contexts (interp.h):
 * the main interpreter, own-GIL sub-interpreters, __main__ namespaces. */
#include "interp.h"

#include "env.h"

#include <stdlib.h>
#include <string.h>

#include "erlmod.h"
#include "lock.h"
#include "loop.h"
#include "pylog.h"
#include "pysrc.h"
#include "sleep.h"

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

/* The main interpreter's sys.stdout and sys.stderr, shared by its
 * executors; a sub-interpreter's are its executor's own. */
static pyx_stdio main_stdio;

/* Points sys.stdout and sys.stderr at the Erlang logger (pylog.c), then
 * runs py/boot.py's _boot(paths, guard, sleep, lock): the configured paths
 * first on sys.path; with guard, decimal and datetime in pure Python; and
 * the waits that a cancel ends: sleep as time.sleep (sleep.h), lock as
 * threading's _allocate_lock (lock.h). With the GIL of the current
 * interpreter held. */
static int boot(const char *paths, int guard, pyx_stdio *io)
{
    if (pyx_stdio_install(io) < 0)
        return -1;
    PyObject *ns = PyDict_New();
    if (ns == NULL)
        return -1;
    int rc = -1;
    PyObject *fn = NULL, *res = NULL, *sleep = NULL, *lock = NULL; /* fn borrowed, the others owned */
    if (PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0 || pyx_py_run(PYX_PY_BOOT, ns) < 0)
        goto done;
    fn = PyDict_GetItemString(ns, "_boot");
    sleep = pyx_time_sleep_new();
    lock = pyx_lock_type_new();
    if (fn == NULL || sleep == NULL || lock == NULL)
        goto done;
    res = PyObject_CallFunction(fn, "siOO", paths, guard, sleep, lock);
    rc = res ? 0 : -1;
done:
    Py_XDECREF(res);
    Py_XDECREF(sleep);
    Py_XDECREF(lock);
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
            PyEval_RestoreThread(main_ts); /* release what Ensure took, as below */
            PyGILState_Release(g);
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
    pyx_env_release(c);
    Py_CLEAR(c->globals);
    Py_CLEAR(c->eval_cache);
    Py_CLEAR(c->types.pid_type);
    Py_CLEAR(c->types.ref_type);
    Py_CLEAR(c->types.opaque_type);
    Py_CLEAR(c->types.atom_type);
    Py_CLEAR(c->types.buffer_type);
    Py_CLEAR(c->marker_type);
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
        PyObject *name = PyUnicode_FromString("__main__"); /* owned */
        if (c->globals != NULL &&
            (name == NULL || PyDict_SetItemString(c->globals, "__builtins__", PyEval_GetBuiltins()) < 0 ||
             PyDict_SetItemString(c->globals, "__name__", name) < 0))
            Py_CLEAR(c->globals);
        Py_XDECREF(name);
    }
    if (c->globals == NULL)
        goto fail;
    c->eval_cache = PyDict_New();
    erl = PyImport_ImportModule("erlang");
    if (c->eval_cache == NULL || erl == NULL)
        goto fail;
    /* eval and exec see erlang without an import, as in the NIF 2.x
     * (the globals hold their own reference; a name already there stays) */
    if (PyDict_GetItemString(c->globals, "erlang") == NULL && PyDict_SetItemString(c->globals, "erlang", erl) < 0)
        goto fail;
    c->types.pid_type = PyObject_GetAttrString(erl, "Pid");
    c->types.ref_type = PyObject_GetAttrString(erl, "Ref");
    c->types.opaque_type = PyObject_GetAttrString(erl, "Opaque");
    c->types.atom_type = PyObject_GetAttrString(erl, "Atom");
    c->types.buffer_type = PyObject_GetAttrString(erl, "PyBuffer");
    c->marker_type = PyObject_GetAttrString(erl, "ScheduleMarker");
    if (!c->types.pid_type || !c->types.ref_type || !c->types.opaque_type || !c->types.atom_type ||
        !c->types.buffer_type || !c->marker_type)
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
    pyx_loop_forget(c); /* its tasks answered, its loop closed */
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
