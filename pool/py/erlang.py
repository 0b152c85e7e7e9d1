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


__all__ = ['Pid', 'Ref', 'Opaque', 'Atom', 'AtomLimitError', 'Error', 'ProcessError', 'SuspensionRequired', 'call', 'send', 'whereis', 'sleep', 'schedule',
           'state_set', 'state_get', 'state_delete', 'state_keys', 'state_incr', 'state_decr']
