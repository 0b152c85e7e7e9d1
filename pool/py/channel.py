# Channels from Erlang (docs/channels.md): erlang.Channel (Erlang terms,
# py_channel), erlang.ByteChannel (raw bytes, py_byte_channel) and
# erlang.PyBuffer (a file-like reader over raw bytes, py_buffer). Run in
# the `erlang` module's namespace after erlang.py; the queues are the
# sidecar's, in C (pool/channel.c: _chan_recv, _chan_try, _chan_watch,
# _chan_unwatch), shared by every context. `from erlang.channel import
# Channel, reply` works too, as with the NIF.
import sys as _sys


class ChannelClosed(Exception):
    '''The channel is closed and holds nothing more: its creator closed
    it (py_channel:close/1), died, or the sidecar restarted.'''


_HANDLES = ('py_channel', 'py_byte_channel', 'py_buffer')


def _channel_id(handle):
    '''The channel's number in the sidecar, from the Erlang handle (the
    tuple {py_channel, Id, ...} as Python gets it) or the number itself.'''
    if isinstance(handle, int) and not isinstance(handle, bool):
        return handle
    if isinstance(handle, (Channel, ByteChannel, PyBuffer)):
        return handle._id
    if (isinstance(handle, tuple) and len(handle) >= 2 and handle[0] in _HANDLES
            and isinstance(handle[1], int)):
        return handle[1]
    raise TypeError('not a channel handle: %r' % (handle,))


class Channel:
    '''Messages that Erlang sends with py_channel:send/2, in order.
    receive() blocks its caller (a thread, or the request), without the
    GIL; a cancel of the request (its caller's timeout) ends the wait with
    KeyboardInterrupt. Any context may receive; each message goes to one
    receiver.'''

    __slots__ = ('_id', '_back', '_owner')

    def __init__(self, handle):
        self._id = _channel_id(handle)
        self._back = []  # taken by an async_receive that was cancelled
        self._owner = handle[6] if isinstance(handle, tuple) and len(handle) == 7 else None

    def receive(self, timeout=None):
        '''The next message; waits for one. ChannelClosed once the channel
        is closed and empty; TimeoutError after timeout seconds.'''
        if self._back:
            return self._back.pop(0)
        got = _chan_recv(self._id, timeout)  # noqa: F821 (channel.c)
        if got is None:
            raise TimeoutError('no message on channel %d within %s s' % (self._id, timeout))
        return got[0]

    def try_receive(self):
        '''The next message, or None when there is none now.
        ChannelClosed once the channel is closed and empty.'''
        if self._back:
            return self._back.pop(0)
        got = _chan_try(self._id)  # noqa: F821
        return None if got is None else got[0]

    async def async_receive(self):
        '''The next message, awaited in any asyncio loop: the loop waits on
        an eventfd that the sidecar makes readable on data or close
        (loop.add_reader), so other coroutines run meanwhile.'''
        if self._back:
            return self._back.pop(0)
        got = _chan_try(self._id)  # noqa: F821
        if got is not None:
            return got[0]
        return await _await_message(self)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.receive()
        except ChannelClosed:
            raise StopIteration from None

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.async_receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def __repr__(self):
        return '<erlang.%s %d>' % (type(self).__name__, self._id)


async def _await_message(ch):
    import asyncio
    import os
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    cid = ch._id

    def ready():
        try:
            os.eventfd_read(fd)
        except BlockingIOError:
            pass
        if fut.done():
            return
        try:
            got = _chan_try(cid)  # noqa: F821
        except ChannelClosed as e:
            fut.set_exception(e)
            return
        if got is not None:
            fut.set_result(got[0])

    try:
        if not _chan_watch(cid, fd):  # noqa: F821
            # gone (ChannelClosed), or PYX_CHAN_FDS waiters already: poll
            while True:
                got = _chan_try(cid)  # noqa: F821
                if got is not None:
                    return got[0]
                await asyncio.sleep(0.001)
        loop.add_reader(fd, ready)
        try:
            ready()  # a message that came before the watch
            try:
                return await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    ch._back.append(fut.result())  # taken: not lost
                raise
        finally:
            loop.remove_reader(fd)
            _chan_unwatch(cid, fd)  # noqa: F821
    finally:
        os.close(fd)


class ByteChannel(Channel):
    '''Raw bytes that Erlang sends with py_byte_channel:send/2: each
    receive() gives one chunk, as bytes.'''

    __slots__ = ()

    def receive_bytes(self, timeout=None):
        return self.receive(timeout)

    def try_receive_bytes(self):
        return self.try_receive()

    async def async_receive_bytes(self):
        return await self.async_receive()

    def send_bytes(self, data):
        '''Sends data to the process that made the channel, as the message
        {py_byte_channel, Ch, Data} (py_byte_channel:recv/2).'''
        if self._owner is None:
            raise TypeError('this ByteChannel was made from a number, not its handle: no owner')
        return send(self._owner, (Atom('py_byte_channel'), self._id, bytes(data)))  # noqa: F821


class PyBuffer:
    '''A read-only file over the bytes Erlang writes with py_buffer:write/2
    until py_buffer:close/1: read, readline, readlines, iteration by line,
    seek and tell. A read waits (without the GIL, ended by a cancel) until
    enough bytes came or the buffer is closed. What was read is kept, so
    seek may go back. py_buffer's handle is one already when it comes as
    an argument (pyetf's conversion calls PyBuffer(handle)); PyBuffer of a
    PyBuffer is that PyBuffer.'''

    def __new__(cls, handle):
        if isinstance(handle, PyBuffer):
            return handle
        return super().__new__(cls)

    def __init__(self, handle):
        if handle is self:
            return
        self._id = _channel_id(handle)
        self._data = bytearray()
        self._pos = 0
        self._eof = False

    def _more(self):
        '''Waits for one more chunk; False once closed.'''
        if self._eof:
            return False
        try:
            got = _chan_recv(self._id, None)  # noqa: F821
        except ChannelClosed:
            self._eof = True
            return False
        self._data += got[0]
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self._data) - self._pos
        while len(self._data) - self._pos < size and self._more():
            pass
        out = bytes(self._data[self._pos:self._pos + size])
        self._pos += len(out)
        return out

    def readline(self, size=-1):
        start = self._pos
        while True:
            nl = self._data.find(b'\n', start)
            if nl >= 0:
                end = nl + 1
                break
            start = len(self._data)
            if not self._more():
                end = len(self._data)
                break
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        out = bytes(self._data[self._pos:end])
        self._pos = end
        return out

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def seek(self, offset, whence=0):
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        elif whence == 2:
            while self._more():
                pass
            pos = len(self._data) + offset
        else:
            raise ValueError('whence must be 0, 1 or 2')
        if pos < 0:
            raise ValueError('negative seek position %d' % pos)
        while len(self._data) < pos and self._more():
            pass
        self._pos = pos
        return pos

    def tell(self):
        return self._pos

    def readable(self):
        return True

    def seekable(self):
        return True

    def writable(self):
        return False

    @property
    def closed(self):
        return False

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return '<erlang.PyBuffer %d>' % self._id


def reply(pid, term):
    '''erlang.send(pid, term), as the NIF's erlang.channel.reply.'''
    return send(pid, term)  # noqa: F821 (erlang.py)


def _channel_module():
    import types
    m = types.ModuleType('erlang.channel', 'Channels from Erlang: Channel, ByteChannel, PyBuffer, reply.')
    for name in ('Channel', 'ByteChannel', 'PyBuffer', 'ChannelClosed', 'reply'):
        setattr(m, name, globals()[name])
    _sys.modules['erlang.channel'] = m
    return m


channel = _channel_module()
__all__ += ['Channel', 'ByteChannel', 'PyBuffer', 'ChannelClosed', 'reply']  # noqa: F821
del _channel_module
