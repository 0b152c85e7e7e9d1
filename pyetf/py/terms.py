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


try:
    _atom_admit  # the erlang module's (pool/erlmod.c)
except NameError:  # the classes alone (pyetf's tests): no count
    def _atom_admit(name):
        return True

    def _atom_budget():
        return (0, 0)

try:
    _atom_exists  # pool/py/erlang.py's, defined after this file runs
except NameError:
    def _atom_exists(name):
        return False


class AtomLimitError(ValueError):
    '''Raised by erlang.Atom(name) for a name that would be a new atom once
    the new atoms Python may make are spent: the BEAM's atom table is never
    collected, so erlang_python makes at most max_atoms of them (its
    application setting) over the VM's life.'''


class Atom(str):
    '''A str that Erlang receives as an atom: erlang.Atom("ok"). A name that
    is new to the BEAM counts against erlang_python's max_atoms setting;
    past it, AtomLimitError (unless the BEAM, asked, has the atom).'''
    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        self = str.__new__(cls, *args, **kwargs)
        if not _atom_admit(self) and not _atom_exists(self):
            max_atoms, spent = _atom_budget()
            raise AtomLimitError(
                f'erlang.Atom({str.__repr__(self)}): no new atom can be made, Python has '
                f'made {spent} of the max_atoms = {max_atoms} that erlang_python allows '
                f'(the max_atoms setting: the BEAM never frees an atom)')
        return self

    def __repr__(self):
        return f'erlang.Atom({str.__repr__(self)})'
