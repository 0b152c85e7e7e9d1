# The event loop of each context (pool/loop.h, docs/async.md), run in the
# erlang module's namespace after erlang.py. asyncio is imported on first
# use only: an interpreter that never runs a coroutine does not pay for it.
#
# The executor drives the loop: between requests, while the loop has work,
# it calls loop._pyx_step(cap), one _run_once whose select also watches the
# executor's eventfd, written when a request comes. The C side is in
# loop.c (_loop_register, _loop_kick, _loop_get, _loop_hold, _loop_check,
# _loop_log, _task_reply).

_loop_cls = None


def _loop_class():
    """ErlangEventLoop, made on first use (it imports asyncio)."""
    global _loop_cls
    if _loop_cls is not None:
        return _loop_cls
    import asyncio
    import selectors
    import threading
    from asyncio import events

    class _Selector(selectors.DefaultSelector):
        """The loop's selector: also watches the executor's eventfd (its
        events are not the loop's), and waits at most cap seconds."""
        _wake = -1
        _cap = None

        def select(self, timeout=None):
            cap = self._cap
            if cap is not None and (timeout is None or timeout > cap):
                timeout = cap
            ready = super().select(timeout)
            if self._wake >= 0 and ready:
                n = len(ready)
                ready = [kv for kv in ready if kv[0].fd != self._wake]
                if len(ready) != n:
                    try:
                        import os
                        os.read(self._wake, 8)
                    except OSError:
                        pass
                    _loop_answers()  # async_call's, which the executor does not pop in erlang.run
            _loop_check()  # erlang.run in a cancelled request: KeyboardInterrupt
            return ready

    class ErlangEventLoop(asyncio.SelectorEventLoop):
        """A SelectorEventLoop that a context's executor drives between its
        requests. Signal handlers belong to the sidecar (Go): none here."""

        def __init__(self):
            self._pyx_q = 0        # the executor's queue, once registered
            self._pyx_tasks = 0    # tasks not done
            self._pyx_by_id = {}   # task request's reply bytes -> (task, caller pid bytes)
            self._pyx_cbs = {}     # async_call's callback number -> its future
            super().__init__(_Selector())
            self.set_exception_handler(_exception_handler)

        def add_signal_handler(self, sig, callback, *args):
            raise NotImplementedError("erlang: signal handlers belong to the sidecar")

        def remove_signal_handler(self, sig):
            raise NotImplementedError("erlang: signal handlers belong to the sidecar")

        def _pyx_bind(self, q, fd):
            self._pyx_q = q
            self._selector._wake = fd
            self._selector.register(fd, selectors.EVENT_READ)

        def _pyx_kick(self, level=2):
            # work given from outside a step: the executor is to step the
            # loop (2: ready handles, run now; 1: a timer or a reader)
            if self._pyx_q and self._thread_id is None:
                _loop_kick(self._pyx_q, level)

        def create_task(self, coro, **kwargs):
            task = super().create_task(coro, **kwargs)
            self._pyx_tasks += 1
            task.add_done_callback(self._pyx_task_done)
            self._pyx_kick()
            return task

        def _pyx_task_done(self, task):
            self._pyx_tasks -= 1

        def call_soon(self, callback, *args, context=None):
            handle = super().call_soon(callback, *args, context=context)
            self._pyx_kick()
            return handle

        def call_at(self, when, callback, *args, context=None):
            handle = super().call_at(when, callback, *args, context=context)
            self._pyx_kick(1)
            return handle

        def call_soon_threadsafe(self, callback, *args, context=None):
            handle = super().call_soon_threadsafe(callback, *args, context=context)
            if self._pyx_q:
                _loop_kick(self._pyx_q, 2)  # from any thread: wakes the executor
            return handle

        def _add_reader(self, fd, callback, *args):
            handle = super()._add_reader(fd, callback, *args)
            self._pyx_kick(1)
            return handle

        def _add_writer(self, fd, callback, *args):
            handle = super()._add_writer(fd, callback, *args)
            self._pyx_kick(1)
            return handle

        def _pyx_active(self):
            # the self-pipe, and the eventfd once bound, are always there
            fixed = 2 if self._pyx_q else 1
            return bool(self._ready or self._scheduled or self._pyx_tasks or
                        len(self._selector.get_map()) > fixed)

        def _pyx_step(self, cap):
            """One iteration, from the executor (loop.c): 2 when handles are
            ready to run, 1 when it waits (timers, readers, tasks), 0 idle."""
            if self.is_closed() or self.is_running():
                return 0
            self._selector._cap = cap
            old = events._get_running_loop()
            events._set_running_loop(self)
            self._thread_id = threading.get_ident()
            try:
                self._run_once()
            finally:
                self._thread_id = None
                self._stopping = False
                events._set_running_loop(old)
                self._selector._cap = None
            return 2 if self._ready else 1 if self._pyx_active() else 0

        def _pyx_cb_answer(self, n, data):
            """The BEAM's answer to async_call n (loop.c): True if it was
            this loop's."""
            fut = self._pyx_cbs.pop(n, None)
            if fut is None:
                return False
            if fut.done():
                return True
            try:
                answer = _etf_decode(data)
                kind, value = answer
                if kind == 'ok':
                    fut.set_result(value)
                elif kind == 'error' and isinstance(value, tuple) and len(value) == 2:
                    fut.set_exception(Error(*value))  # noqa: F821 (erlang.py)
                else:
                    raise ValueError('erlang.async_call: an answer that is neither {ok, _} nor {error, {_, _}}')
            except Exception as e:
                fut.set_exception(e)
            return True

        def _pyx_cancel(self, reply):
            entry = self._pyx_by_id.get(reply)
            if entry is not None:
                entry[0].cancel()

        def _pyx_down(self, pid):
            for task, caller in list(self._pyx_by_id.values()):
                if caller == pid:
                    task.cancel()

        def _pyx_forget(self):
            """The context goes: its tasks are answered as cancelled."""
            for reply, (task, _) in list(self._pyx_by_id.items()):
                task.remove_done_callback(_task_end)
                _task_reply(reply, 2, None)
            self._pyx_by_id.clear()
            for task in asyncio.all_tasks(self):
                task.cancel()
            try:
                self.close()
            except Exception:
                pass

    _loop_cls = ErlangEventLoop
    return ErlangEventLoop


def _exception_handler(loop, context):
    """What the loop cannot hand to anyone goes to the sidecar's log, at
    error, as the context's line."""
    import traceback
    msg = context.get('message', 'unhandled exception in the event loop')
    exc = context.get('exception')
    text = msg
    if exc is not None:
        text += '\n' + ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    _loop_log(text)


def new_event_loop():
    """A new loop of the type every context runs (erlang.ErlangEventLoop),
    not driven by the executor: run it yourself (run_until_complete)."""
    return _loop_class()()


def _context_loop():
    """The calling context's loop, made and registered on first use; None
    on a thread that is no context's."""
    loop = _loop_get()
    if loop is None:
        try:
            fresh = _loop_class()()
            q, fd = _loop_register(fresh)
        except RuntimeError:
            return None
        fresh._pyx_bind(q, fd)
        loop = fresh
    return loop


def get_event_loop():
    """The context's loop (the running loop inside a coroutine)."""
    import asyncio
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        loop = _context_loop()
        return loop if loop is not None else asyncio.get_event_loop()


def run(coro):
    """Runs coro on the context's loop and returns its result; the loop's
    other tasks go on meanwhile. From synchronous code (a request)."""
    import asyncio
    loop = _context_loop()
    if loop is None:
        return asyncio.run(coro)
    if loop.is_running():
        coro.close()
        raise RuntimeError("erlang.run: the context's loop is running: await the coroutine instead")
    _loop_hold(True)
    try:
        return loop.run_until_complete(coro)
    finally:
        _loop_hold(False)


def _spawned_done(task):
    if not task.cancelled() and task.exception() is not None:
        _exception_handler(task.get_loop(), {
            'message': 'erlang.spawn_task: task %r failed' % (task.get_name(),),
            'exception': task.exception()})


def spawn_task(coro):
    """Starts coro as a task on the running loop (from async code) or on
    the context's loop (from sync code); returns the task. An exception in
    it goes to the sidecar's log; nothing else happens."""
    import asyncio
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = _context_loop()
        if loop is None:
            raise RuntimeError("erlang.spawn_task: no event loop on this thread")
    task = loop.create_task(coro)
    task.add_done_callback(_spawned_done)
    return task


def _task_start(aw, reply, caller, spawn):
    """A task request's awaitable result (run.c, loop.c): a task on the
    context's loop whose end answers the request; spawn: nobody waits
    for that answer, so a failure is logged too."""
    import asyncio
    loop = _context_loop()
    if loop is None:
        raise RuntimeError("erlang: no event loop on this thread")
    task = asyncio.ensure_future(aw, loop=loop)
    loop._pyx_by_id[reply] = (task, caller)
    task._pyx_reply = reply
    if spawn:
        task.add_done_callback(_spawned_done)
    task.add_done_callback(_task_end)


def _task_end(task):
    reply = task._pyx_reply
    task.get_loop()._pyx_by_id.pop(reply, None)
    if task.cancelled():
        _task_reply(reply, 2, None)
        return
    exc = task.exception()
    if exc is None:
        _task_reply(reply, 0, task.result())
    else:
        _task_reply(reply, 1, exc)


async def async_call(name, *args):
    """Calls the Erlang function registered as name (py:register_function)
    with args, without blocking the loop: other tasks, and the context's
    requests, go on while the BEAM answers. Returns its result or raises
    erlang.Error, as erlang.call does."""
    import asyncio
    loop = asyncio.get_running_loop()
    if getattr(loop, '_pyx_cbs', None) is None or loop is not _loop_get():
        return call(name, *args)  # noqa: F821 (erlang.py): another loop: the blocking call
    fut = loop.create_future()
    n = _async_send(str(name), args)
    loop._pyx_cbs[n] = fut
    try:
        return await fut
    finally:
        loop._pyx_cbs.pop(n, None)


def _loop_start():
    """py_context:start_loop: the context's loop exists from now on."""
    if _context_loop() is None:
        raise RuntimeError("erlang: no event loop on this thread")
    return True


def _loop_stop():
    """py_context:stop_loop: every task of the context's loop is cancelled
    (each answers its caller as cancelled once its finally has run)."""
    import asyncio
    loop = _loop_get()
    if loop is None:
        return 0
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    return len(tasks)


__doc__ += """
Async (docs/async.md): each context has an event loop that its executor
drives between requests. run(coro) runs a coroutine on it and returns its
result; spawn_task(coro) starts a task from sync or async code;
new_event_loop() gives that loop type (ErlangEventLoop), get_event_loop()
the running or the context's loop; await async_call(name, *args) calls a
registered function without blocking the loop.
"""  # noqa: F821 (erlang.py)

__all__ += ['run', 'spawn_task', 'new_event_loop', 'get_event_loop', 'async_call']  # noqa: F821 (erlang.py)
