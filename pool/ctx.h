/* ctx.h: executors and contexts, the data (their life: interp.h). Fields
 * are read with the GIL of the executor's interpreter unless they say
 * otherwise. */
#ifndef PYX_CTX_H
#define PYX_CTX_H

#include "pyetf.h"

/* Execution modes, as py:execution_mode() names them. */
enum { PYX_SUBINTERP = 0, PYX_MULTI_EXECUTOR = 1, PYX_FREE_THREADED = 2 };

/* Request kinds. */
enum { PYX_CALL = 0, PYX_EVAL = 1, PYX_EXEC = 2 };
/* A call whose awaitable result runs as a task on the context's loop
 * (loop.h), answered when it ends. */
enum { PYX_TASK = 3 };

typedef struct pyx_stdio pyx_stdio; /* pylog.h */

/* An executor: one OS thread's thread state in one interpreter. Its fields
 * other than current are written once, on the executor's thread. */
typedef struct pyx_exec {
    PyInterpreterState *interp;
    PyThreadState *ts;
    unsigned long thread_id;
    long long current; /* sequence number of the request running, 0 if none;
                          read and written only with interp's GIL held */
    long long interrupted; /* the last request interrupted for a cancel
                              (run.h: once each); with interp's GIL */
    pyx_stdio *stdio;  /* interp's sys.stdout and sys.stderr (pylog.h) */
} pyx_exec;

/* A context: a namespace (__main__) in an executor's interpreter. */
typedef struct pyx_ctx {
    pyx_exec *ex;
    long long id;         /* the BEAM's number for it (erlang.call) */
    PyObject *globals;    /* strong: the context's __main__ dict */
    PyObject *eval_cache; /* strong: source str -> code object */
    PyObject *envs;       /* strong, NULL until the first: pid bytes -> the
                             process's environment (env.h) */
    PyObject *env_key, *env_last; /* strong: the last environment used */
    PyObject *env;        /* borrowed: the globals of the request running
                             here, for the nested requests run on top of
                             it (they see the calling environment) */
    PyObject *env_pid;    /* borrowed: the pid (bytes) whose environment
                             env is; NULL for __main__ */
    PyObject *refs;       /* strong, NULL until the first: int -> (object,
                             holder's pid bytes or None), objects held for
                             Erlang (py:call ... #{return => ref}) */
    PyObject *ref_owners; /* strong: pid bytes -> set of the refs it holds */
    long long ref_next;   /* the number of the next ref */
    PyObject *alive_last; /* strong: the _etf bytes of the pid erlang.send
                             last found alive here (alive.h), ... */
    uint64_t alive_epoch; /* ... when the count of exits was this */
    pyx_types types;      /* strong references, see pyetf.h */
    PyObject *marker_type; /* strong: erlang.ScheduleMarker, for run.c's
                              check of a result */
} pyx_ctx;
#endif
