# The classes of the `erlang` module that stand for Erlang terms Python has
# no type for (pyetf.h's pyx_types). Run in the module's namespace, in every
# interpreter, before pool/py/erlang.py.


class _Term:
    '''An Erlang term kept as its external format (tag first).'''
    __slots__ = ('_etf',)

    def __init__(self, etf):
        self._etf = bytes(etf)

    def __eq__(self, other):
        return type(other) is type(self) and other._etf == self._etf

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((type(self).__name__, self._etf))

    def __repr__(self):
        return f'erlang.{type(self).__name__}({self._etf.hex()})'

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (type(self), (self._etf,))


class Pid(_Term):
    '''An Erlang process identifier.'''
    __slots__ = ()


class Ref(_Term):
    '''An Erlang reference.'''
    __slots__ = ()


class Opaque(_Term):
    '''A port or fun: passed back to Erlang unchanged.'''
    __slots__ = ()


class Atom(str):
    '''A str that Erlang receives as an atom: erlang.Atom("ok").'''
    __slots__ = ()

    def __repr__(self):
        return f'erlang.Atom({str.__repr__(self)})'
