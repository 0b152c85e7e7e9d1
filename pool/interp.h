/* interp.h: interpreters, executors and contexts (interp.c). */
#ifndef PYX_INTERP_H
#define PYX_INTERP_H

#include "pylog.h"
#include "pyx.h"

/* Execution modes, as py:execution_mode() names them. */
enum { PYX_SUBINTERP = 0, PYX_MULTI_EXECUTOR = 1, PYX_FREE_THREADED = 2 };

/* Request kinds. */
enum { PYX_CALL = 0, PYX_EVAL = 1, PYX_EXEC = 2 };

/* An executor: one OS thread's thread state in one interpreter. Its fields
 * other than current are written once, on the executor's thread. */
typedef struct {
    PyInterpreterState *interp;
    PyThreadState *ts;
    unsigned long thread_id;
    long long current; /* sequence number of the request running, 0 if none;
                          read and written only with interp's GIL held */
    pyx_stdio *stdio;  /* interp's sys.stdout and sys.stderr (pylog.h) */
} pyx_exec;

/* A context: a namespace (__main__) in an executor's interpreter. */
typedef struct {
    pyx_exec *ex;
    long long id;         /* the BEAM's number for it (erlang.call) */
    PyObject *globals;    /* strong: the context's __main__ dict */
    PyObject *eval_cache; /* strong: source str -> code object */
    pyx_types types;      /* strong references, see pyx.h */
} pyx_ctx;

/* Makes c the context that Python threads of its interpreter call Erlang
 * for (set), or, if it is, stops it being that (!set). module: the
 * `erlang` module of c's interpreter. With the GIL (erlmod.c). */
void pyx_erlang_home(PyObject *module, pyx_ctx *c, int set);

int pyx_mode(void);
/* Initialises the main interpreter on the calling thread, then releases
 * the GIL. paths: sys.path entries joined by '\n' (may be empty). Returns
 * NULL on success, else a malloc'd message. */
char *pyx_init_main(const char *paths, const char *executable);
/* Creates an executor on the calling thread, which must stay the same OS
 * thread for the executor's whole life: a new own-GIL sub-interpreter
 * when own_interp, else a thread state in the main interpreter. Returns
 * with no GIL held; NULL and *err (malloc'd) on failure. */
pyx_exec *pyx_exec_new(int own_interp, const char *paths, char **err);
/* Creates context number id in ex; on ex's thread. */
pyx_ctx *pyx_ctx_new(pyx_exec *ex, long long id, char **err);
/* Frees a context; on its executor's thread. */
void pyx_ctx_free(pyx_ctx *ctx);
/* Runs one request on ctx's executor thread: takes and drops the GIL.
 * payload is a versioned ETF term; the versioned ETF result is appended to
 * out, and the traceback (UTF-8 text) of a Python exception to traceback. */
void pyx_run(pyx_ctx *ctx, long long seq, int op, const unsigned char *payload, size_t len, pyx_buf *out,
             pyx_buf *traceback);
/* Raises KeyboardInterrupt in ex's thread if request seq is still running
 * there. Any thread; blocks until it gets the interpreter's GIL. */
int pyx_interrupt(pyx_exec *ex, long long seq);
const char *pyx_version(void);

#endif
