/* task.c: a task request's awaitable to the context's loop (task.h). */
#include "task.h"

#include "current.h"

int pyx_task_defer(pyx_ctx *c, PyObject *res, int spawn)
{
    (void)c;
    PyAsyncMethods *am = Py_TYPE(res)->tp_as_async;
    if (am == NULL || am->am_await == NULL) /* not awaitable: coroutines, futures, __await__ are */
        return 0;
    pyx_job *j = pyx_current_job();
    PyObject *erl = PyImport_ImportModule("erlang"); /* owned; from sys.modules */
    PyObject *reply = PyBytes_FromStringAndSize((const char *)j->data, (Py_ssize_t)j->reply_len);
    PyObject *caller = j->caller_len > 0
                           ? PyBytes_FromStringAndSize((const char *)j->data + j->caller_off, (Py_ssize_t)j->caller_len)
                           : Py_NewRef(Py_None);
    PyObject *r = erl && reply && caller ? PyObject_CallMethod(erl, "_task_start", "OOOi", res, reply, caller, spawn) : NULL;
    Py_XDECREF(r);
    Py_XDECREF(caller);
    Py_XDECREF(reply);
    Py_XDECREF(erl);
    return r != NULL ? 1 : -1;
}
