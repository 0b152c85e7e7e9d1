# The `erlang` module's Python part (erlmod.c runs it in the module's
# namespace, after pyetf/py/terms.py): errors from Erlang, and the Python face
# of the calls into Erlang, whose C parts are _call and _send; the schedule
# markers, which run.c resolves.


__doc__ = """The BEAM, seen from Python (erlang_python).

Erlang terms: Pid, Ref, Opaque (ports, funs), Atom (a str Erlang gets as an
atom; AtomLimitError past max_atoms).

Calls into Erlang: call(name, *args), erlang.name(*args) and
`from erlang import name` for a function registered with
py:register_function (hasattr(erlang, name) tells whether it is); Error is
raised when it fails. send(dest, message), whereis(name), ProcessError.
sleep(seconds) sleeps without holding the context; consume_time_slice(percent).

The NIF 2.x continuation API: schedule(), schedule(name, *args),
schedule_py(module, func, args, kwargs), schedule_inline(...) and their
ScheduleMarker; SuspensionRequired.

Shared state, seen by every context and Erlang: state_set, state_get,
state_delete, state_keys, state_incr, state_decr, and SharedDict(handle).

Channels from Erlang (py_channel, py_byte_channel, py_buffer): Channel(handle)
with receive(), try_receive(), async_receive() and iteration until
ChannelClosed; ByteChannel (raw bytes, send_bytes back); PyBuffer, a file
over py_buffer's bytes; reply(pid, term). Also `from erlang.channel import
Channel, reply`.

Type stubs: erlang.pyi in erlang_python's priv/python/erlang-stubs/.
"""


class Error(Exception):
    '''Raised in Python for an error that comes from Erlang: an exception
    of class class_ (error, exit or throw) and reason reason.'''

    def __init__(self, class_, reason):
        super().__init__(class_, reason)
        self.class_ = class_
        self.reason = reason

    def __str__(self):
        return f'{self.class_}: {self.reason!r}'


class ProcessError(Exception):
    '''An error about an Erlang process, as the NIF 2.x raises it (API.md
    section 6).'''


class SuspensionRequired(BaseException):
    '''The NIF 2.x's signal that a callback must suspend the Python code that
    made it. A BaseException, so that `except Exception` in user code never
    catches it; kept so that code written for the NIF runs. The sidecar
    waits for callbacks without suspending: it never raises it.'''


class ScheduleMarker:
    '''What erlang.schedule(name, *args), schedule_py and schedule_inline
    return (the NIF 2.x's continuation API, API.md section 6): a function
    called by py:call, py:eval, ... that returns one has, as its result,
    the result of what the marker names, itself possibly a marker again.
    Only the result of the request is looked at: a marker kept, or put in
    a list, is an object like any other.'''

    __slots__ = ('_kind', '_target', '_args', '_kwargs', '_globals')

    def __init__(self, kind, target, args, kwargs, globals_):
        self._kind = kind        # 'erlang', 'py' or 'inline'
        self._target = target    # a registered name, or (module, func)
        self._args = args        # a tuple
        self._kwargs = kwargs    # a dict
        self._globals = globals_  # the caller's globals, for '__main__'

    def __repr__(self):
        if self._kind == 'erlang':
            what = f'schedule({self._target!r})'
        else:
            what = f'schedule_{self._kind}({self._target[0]!r}, {self._target[1]!r})'
        return f'<erlang.ScheduleMarker {what}>'

    def _step(self):
        # Runs what the marker names once; its result may be a marker.
        if self._kind == 'erlang':
            return _call(self._target, self._args)
        if self._kind == 'py':
            _yield()  # between steps, the interpreter's other threads run
        return _lookup(self._target[0], self._target[1], self._globals)(*self._args, **self._kwargs)

    def _resolve(self):
        # run.c calls this for a request's result whose type is exactly
        # ScheduleMarker: the result of the chain of markers.
        result = self
        while type(result) is ScheduleMarker:
            result = result._step()
        return result


def _lookup(module, func, globals_):
    # module.func, func possibly dotted; '__main__' is the caller's globals
    # (a context's own, or its process's environment), as py:call sees it.
    first, *rest = func.split('.')
    if module == '__main__':
        if globals_ is None:
            import __main__
            globals_ = vars(__main__)
        try:
            obj = globals_[first]
        except KeyError:
            raise NameError(f"name {first!r} is not defined in this context's __main__") from None
    else:
        import importlib
        obj = getattr(importlib.import_module(module), first)
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _caller_globals():
    # The globals of the function that called schedule_py/schedule_inline,
    # None when C called them (py:call(erlang, schedule_py, ...)).
    import sys
    try:
        return sys._getframe(3).f_globals
    except ValueError:
        return None


def _py_marker(kind, module, func, args, kwargs):
    if not isinstance(module, str) or not isinstance(func, str):  # erlang.Atom is a str
        raise TypeError(f'erlang.schedule_{kind}: module and func must be str, not '
                        f'{type(module).__name__} and {type(func).__name__}')
    if args is None:
        args = ()
    elif not isinstance(args, (list, tuple)):
        raise TypeError(f'erlang.schedule_{kind}: args must be a list or tuple, not {type(args).__name__}')
    if kwargs is None:
        kwargs = {}
    elif not isinstance(kwargs, dict):
        raise TypeError(f'erlang.schedule_{kind}: kwargs must be a dict, not {type(kwargs).__name__}')
    return ScheduleMarker(kind, (str(module), str(func)), tuple(args), dict(kwargs), _caller_globals())


def schedule(*args):
    '''schedule(): lets the interpreter's other threads, and the machine's,
    run (drops the GIL and yields the CPU once); returns None.
    schedule(name, *args): an erlang.ScheduleMarker that, returned by the
    function a request called, makes the result of the Erlang function
    registered as name, called with args, the request's result.'''
    if not args:
        _yield()
        return None
    return ScheduleMarker('erlang', str(args[0]), tuple(args[1:]), None, None)


def schedule_py(module, func, args=None, kwargs=None):
    '''An erlang.ScheduleMarker that, returned by the function a request
    called, makes the result of module.func(*args, **kwargs) the request's
    result; the interpreter's other threads may run first. A module of
    '__main__' is the caller's globals.'''
    return _py_marker('py', module, func, args, kwargs)


def schedule_inline(module, func, args=None, kwargs=None):
    '''As schedule_py, at once: module.func(*args, **kwargs) runs right
    after the function that returned the marker, in the caller's globals
    for '__main__'.'''
    return _py_marker('inline', module, func, args, kwargs)


def call(name, *args):
    '''Calls the Erlang function registered as name (py:register_function)
    with args and returns its result; raises Error if it fails.'''
    return _call(str(name), args)


def __getattr__(name):
    # erlang.name(*args) and `from erlang import name`: a function that
    # py:register_function registered, asked of the BEAM at each look-up,
    # so that names registered and unregistered later are seen. Names that
    # start with _ are never asked for: the import machinery and tools
    # probe for __path__, _fields_, ... (erlang.call reaches those).
    if name.startswith('_') or not _registered(name):
        raise AttributeError(f"module 'erlang' has no attribute {name!r} "
                             f"(no Erlang function is registered as {name!r}: py:register_function/2,3)")

    def function(*args):
        return _call(name, args)

    function.__name__ = function.__qualname__ = name
    return function


def _registered(name):
    # Whether the BEAM has a function registered as name (py_callback).
    try:
        return _call('$registered', (name,)) is True
    except Exception:  # no context of this interpreter has run a request, ...
        return False


def send(dest, message, *, check=None):
    '''Sends message to dest, an erlang.Pid or an erlang.Atom naming a
    registered process, without waiting for it to arrive, like Erlang's !.

    By default a send to a pid of this node that is not alive raises
    ProcessError, as in the NIF 2.x: the first send to a pid asks the BEAM
    once (a round trip), which then watches it, so later sends to it cost
    a table lookup; a process that exits is known dead a moment after
    (until then a send to it is lost, as a message in flight is). Names
    and pids of other nodes are not checked.
    check=False: the fast path, fire and forget, never asks (a dead
    process is no error).
    check=True: waits until the BEAM has sent it and raises ProcessError
    for a dead process or a name nobody has.'''
    if check is None:
        epoch = _send(dest, message, True)
        if epoch is not None:  # a pid not known alive yet: ask once
            _alive_send(dest, message, epoch)
    elif check:
        answer = _call('$send', (dest, message))
        if answer != 'ok':
            raise ProcessError(_send_refused(dest, answer))
    else:
        _send(dest, message)


def _alive_send(dest, message, epoch):
    answer = _call('$alive', (dest,))
    if answer not in ('alive', 'remote'):
        raise ProcessError(_send_refused(dest, answer))
    _alive_add(dest, epoch)
    _send(dest, message)


def _send_refused(dest, answer):
    if answer == 'denied':
        return f'erlang.send: {dest!r} is a process of the runtime system, out of reach'
    return f'erlang.send: no process {dest!r} (noproc)'


def _atom_exists(name):
    # erlang.Atom past the sidecar's budget of new atoms (pyetf/atoms.h): a
    # name the BEAM has costs nothing, so ask it, for a bounded number of
    # distinct names; the answer is kept.
    ask = _atom_ask_begin(name)
    if ask != 2:
        return ask == 1
    try:
        exists = _call('$atom_exists', (str(name),)) is True
    except Exception:  # no request runs on this thread, ...: not asked
        return False
    _atom_ask_end(name, exists)
    return exists


def whereis(name):
    '''The erlang.Pid registered as name (a str, an erlang.Atom or UTF-8
    bytes) in the BEAM, or None.'''
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).decode('utf-8')
    elif not isinstance(name, str):  # erlang.Atom is a str
        raise TypeError(f'erlang.whereis: name must be str, bytes or erlang.Atom, not {type(name).__name__}')
    return _call('$whereis', (str(name),))


# --- SharedDict, and what a new context runs first (py_shared_dict,
# py_import; API.md sections 7 and 11) ------------------------------------
# A SharedDict lives in the shared state (state_*), under keys that begin
# with a NUL byte, which state_keys does not list: its entry K is the key
# '\0sd:<id>/' + K, and the key '\0sd:<id>' (its owner's pid) says it is
# alive. Erlang (py_shared_dict) makes, destroys and reads them the same way.

_state_keys = state_keys  # noqa: F821 (erlmod_state.c)


def state_keys():
    '''The keys of the shared state, in no order: str, or bytes for a key
    that is not UTF-8; the SharedDicts' own keys are not listed.'''
    return [k for k in _state_keys() if k[:1] not in ('\0', b'\0')]


def _utf8(key):
    if isinstance(key, str):
        return key.encode('utf-8')
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    raise TypeError(f'SharedDict keys are str or bytes, not {type(key).__name__}')


class SharedDict:
    '''The Python face of a dict made by py:shared_dict_new() in Erlang:
    SharedDict(handle), with handle that term passed as an argument. Every
    context and Erlang see the same entries; values are terms, converted
    like call arguments and results. Once destroyed (py:shared_dict_destroy
    or its owner process gone) every operation raises RuntimeError.'''

    __slots__ = ('handle', '_marker', '_prefix')

    def __init__(self, handle):
        if isinstance(handle, SharedDict):
            handle = handle.handle
        if not (isinstance(handle, tuple) and len(handle) == 3 and handle[0] == '$py_shared_dict'
                and isinstance(handle[2], int) and not isinstance(handle[2], bool) and handle[2] > 0):
            raise TypeError(f'SharedDict(handle): handle must be what py:shared_dict_new() gave, not {handle!r}')
        self.handle = handle
        self._marker = b'\0sd:%d' % handle[2]
        self._prefix = self._marker + b'/'

    def _alive(self):
        try:
            state_get(self._marker)  # noqa: F821
        except KeyError:
            raise RuntimeError(f'SharedDict {self.handle[2]} is destroyed') from None

    def __getitem__(self, key):
        self._alive()
        try:
            return state_get(self._prefix + _utf8(key))  # noqa: F821
        except KeyError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        self._alive()
        state_set(self._prefix + _utf8(key), value)  # noqa: F821

    def __delitem__(self, key):
        k = self._prefix + _utf8(key)
        self._alive()
        try:
            state_get(k)  # noqa: F821
        except KeyError:
            raise KeyError(key) from None
        state_delete(k)  # noqa: F821

    def get(self, key, default=None):
        '''The value under key, or default.'''
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self):
        '''The keys, sorted: str, or bytes for a key that is not UTF-8.'''
        self._alive()
        n = len(self._prefix)
        out = []
        for k in _state_keys():
            b = k.encode('utf-8') if isinstance(k, str) else k
            if b.startswith(self._prefix):
                try:
                    out.append(b[n:].decode('utf-8'))
                except UnicodeDecodeError:
                    out.append(b[n:])
        return sorted(out, key=_utf8)

    def values(self):
        return [v for _, v in self.items()]

    def items(self):
        out = []
        for k in self.keys():
            try:
                out.append((k, self[k]))
            except KeyError:  # deleted meanwhile
                pass
        return out

    def __contains__(self, key):
        self._alive()
        try:
            state_get(self._prefix + _utf8(key))  # noqa: F821
            return True
        except KeyError:
            return False

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def __repr__(self):
        return f'erlang.SharedDict({self.handle!r})'


def _add_paths(paths):
    # py_import: each directory goes first in sys.path, in order (the last
    # one given ends first), once.
    import importlib
    import sys
    for p in paths:
        p = p.decode('utf-8', 'surrogateescape') if isinstance(p, bytes) else p
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    importlib.invalidate_caches()


def _import(imports):
    # py_import: [(module, function or None)]; raises what import raises,
    # or AttributeError for a function the module lacks
    import importlib
    for module, function in imports:
        mod = importlib.import_module(module)
        if function is not None:
            getattr(mod, function)


# --- Object references (py_ref, API.md section 12): objects kept in the
# context for Erlang, by number (pool/env.c) ---------------------------------

def _ref_method(n, method, args, kwargs):
    return getattr(_ref_get(n), method)(*args, **kwargs)


def _ref_getattr(n, name):
    return getattr(_ref_get(n), name)


__all__ = ['Pid', 'Ref', 'Opaque', 'Atom', 'AtomLimitError', 'Error', 'ProcessError', 'SuspensionRequired',
           'ScheduleMarker', 'call', 'send', 'whereis', 'sleep', 'schedule', 'schedule_py', 'schedule_inline',
           'consume_time_slice', 'state_set', 'state_get', 'state_delete', 'state_keys', 'state_incr',
           'state_decr', 'SharedDict']
