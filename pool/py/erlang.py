# The `erlang` module's Python part (erlmod.c runs it in the module's
# namespace, after pyetf/py/terms.py): errors from Erlang, and the Python face
# of the calls into Erlang, whose C parts are _call and _send.


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


def call(name, *args):
    '''Calls the Erlang function registered as name (py:register_function)
    with args and returns its result; raises Error if it fails.'''
    return _call(str(name), args)


def __getattr__(name):
    # erlang.name(*args) and `from erlang import name`: a registered function
    if name.startswith('__'):
        raise AttributeError(f"module 'erlang' has no attribute {name!r}")

    def function(*args):
        return _call(name, args)

    function.__name__ = function.__qualname__ = name
    return function


def send(dest, message, *, check=False):
    '''Sends message to dest, an erlang.Pid or an erlang.Atom naming a
    registered process, without waiting, like Erlang's !: a dead process
    is no error. With check=True it waits until the message is sent and
    raises Error('error', ('noproc', dest)) if dest is not alive.'''
    if check:
        _call('$send', (dest, message))
    else:
        _send(dest, message)


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


__all__ = ['Pid', 'Ref', 'Opaque', 'Atom', 'AtomLimitError', 'Error', 'ProcessError', 'SuspensionRequired', 'call', 'send', 'whereis', 'sleep', 'schedule',
           'state_set', 'state_get', 'state_delete', 'state_keys', 'state_incr', 'state_decr',
           'SharedDict']
