# stream.py: generators as messages (py:stream*, docs/streams.md), run in
# the `erlang` module's namespace after erlang.py (pool/stream.c). The
# stream object is an object reference of the context (pool/env.c), held by
# the process that opened it: when that process exits, or the stream is
# closed, its generator is closed (its finally runs). Each batch is one
# request on the context's executor (_stream_next), so other requests run
# between batches and nothing waits in the context for the consumer.

import time as _stream_time

# A batch ends after this many seconds even when fewer items than asked
# came: a slow generator's items go out as they come, not a batch later.
_STREAM_BATCH_SECONDS = 0.005


# An async generator is stepped on the context's event loop (loop.py): a
# batch of it is a coroutine, which the batch request (a task request,
# py_stream) awaits there, so the context serves other requests while the
# generator awaits.


class _Stream:
    """An iterator, or an async generator, stepped in batches for Erlang."""

    __slots__ = ('it', 'agen', 'loop', 'pending', 'closed', '__weakref__')

    def __init__(self, obj):
        self.pending = None  # an exception raised after items of a batch
        self.closed = False
        self.loop = None
        if hasattr(obj, '__anext__'):
            self.agen, self.it = obj, None
            # kept for close(), which may run with no request (its holder's
            # exit drops it between requests), when the context is not known
            self.loop = _context_loop()
        else:
            self.agen, self.it = None, iter(obj)  # TypeError for no iterable

    def next_batch(self, n):
        # (Items, more | done); an exception raised after some items of
        # this batch comes at the next call, so those items go out first.
        done = self._begin()
        if done is not None:
            return done
        items = []
        deadline = _stream_time.monotonic() + _STREAM_BATCH_SECONDS
        try:
            it = self.it
            while len(items) < n:
                items.append(next(it))
                if _stream_time.monotonic() >= deadline:
                    break
        except StopIteration:
            self._finish()
            return items, Atom('done')
        except Exception as exc:
            self._failed(items, exc)
        return items, Atom('more')

    async def next_batch_async(self, n):
        # next_batch of an async generator, awaited on the context's loop.
        done = self._begin()
        if done is not None:
            return done
        items = []
        deadline = _stream_time.monotonic() + _STREAM_BATCH_SECONDS
        try:
            agen = self.agen
            while len(items) < n:
                items.append(await agen.__anext__())
                if _stream_time.monotonic() >= deadline:
                    break
        except StopAsyncIteration:
            self._finish()
            return items, Atom('done')
        except Exception as exc:
            self._failed(items, exc)
        return items, Atom('more')

    def _begin(self):
        # Before a batch: raises the exception the last one kept, gives
        # the batch of a stream closed, or None to go on.
        if self.pending is not None:
            exc, self.pending = self.pending, None
            self._finish()
            raise exc
        if self.closed:
            return [], Atom('done')
        return None

    def _failed(self, items, exc):
        # An exception in a batch: raised now if no item came before it,
        # else kept for the next batch, so that those items go out first.
        if not items:
            self._finish()
            raise exc
        self.pending = exc

    def _finish(self):
        self.closed = True
        self.it = self.agen = None

    def close(self):
        # Stops the generator: its finally runs now (GeneratorExit).
        if self.closed:
            return
        it, agen = self.it, self.agen
        self._finish()
        if agen is not None:
            loop = self.loop
            if loop is None or loop.is_closed():
                import asyncio
                asyncio.run(agen.aclose())
            elif loop.is_running():  # from a task of that loop
                loop.create_task(agen.aclose())
            else:
                _loop_hold(True)
                try:
                    loop.run_until_complete(agen.aclose())
                finally:
                    _loop_hold(False)
        elif hasattr(it, 'close'):
            it.close()

    def __del__(self):
        # The holder exited (its refs go, pool/env.c): close, so the
        # generator's finally runs (an async generator's too, which the
        # garbage collector alone would not run on a loop).
        try:
            self.close()
        except BaseException:
            pass


def _stream_open(module, func, args, kwargs):
    # The stream of module.func(*args, **kwargs), for py:stream and
    # py:stream_start; '__main__' is the caller's environment, as py:call.
    fn = _lookup(module, func, _stream_globals())
    return _Stream(fn(*args, **kwargs))


def _stream_open_eval(code, local_vars):
    # The stream of an expression (a generator expression, an iterator),
    # for py:stream_eval, in the caller's environment. Locals are seen by the
    # whole expression, the generator's body too (whose scope would not see
    # eval's locals): it runs in a copy of the globals with them added.
    globals_ = _stream_globals()
    if local_vars:
        globals_ = dict(globals_)
        globals_.update(local_vars)
    return _Stream(eval(code, globals_))


def _stream_next(n, count):
    # The next batch of stream n (an object reference): (Items, more | done).
    # The stream is released once done, or on an error. An async
    # generator's batch is a coroutine, which the request (a task) awaits.
    stream = _ref_get(n)
    if stream.agen is not None:
        return _stream_next_async(n, stream, count)
    try:
        items, state = stream.next_batch(count)
    except BaseException:
        _stream_release(n)
        raise
    if state == 'done':
        _stream_release(n)
    return items, state


async def _stream_next_async(n, stream, count):
    try:
        items, state = await stream.next_batch_async(count)
    except BaseException:  # CancelledError too: a cancel of the batch
        _stream_release(n)
        raise
    if state == 'done':
        _stream_release(n)
    return items, state


def _stream_close(n):
    # Closes stream n (its finally runs) and releases it; done already is ok.
    try:
        stream = _ref_get(n)
    except KeyError:
        return None
    try:
        stream.close()
    finally:
        _stream_release(n)
    return None


def _stream_release(n):
    try:
        _ref_release(n)
    except KeyError:
        pass
