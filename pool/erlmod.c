/* erlmod.c: the built-in `erlang` module seen by Python code.
 *
 * Multi-phase initialisation with per-interpreter GIL support, so every
 * sub-interpreter gets its own copy (PLATFORM.md). The module body is
 * Python source, run in the module's namespace by the exec slot: the
 * classes that stand for Erlang terms Python has no type for. */
#include "pyx.h"

static const char erlang_src[] =
    "class _Term:\n"
    "    '''An Erlang term kept as its external format (tag first).'''\n"
    "    __slots__ = ('_etf',)\n"
    "    def __init__(self, etf):\n"
    "        self._etf = bytes(etf)\n"
    "    def __eq__(self, other):\n"
    "        return type(other) is type(self) and other._etf == self._etf\n"
    "    def __ne__(self, other):\n"
    "        return not self == other\n"
    "    def __hash__(self):\n"
    "        return hash((type(self).__name__, self._etf))\n"
    "    def __repr__(self):\n"
    "        return f'erlang.{type(self).__name__}({self._etf.hex()})'\n"
    "    def __copy__(self):\n"
    "        return self\n"
    "    def __deepcopy__(self, memo):\n"
    "        return self\n"
    "    def __reduce__(self):\n"
    "        return (type(self), (self._etf,))\n"
    "\n"
    "class Pid(_Term):\n"
    "    '''An Erlang process identifier.'''\n"
    "    __slots__ = ()\n"
    "\n"
    "class Ref(_Term):\n"
    "    '''An Erlang reference.'''\n"
    "    __slots__ = ()\n"
    "\n"
    "class Opaque(_Term):\n"
    "    '''A port or fun: passed back to Erlang unchanged.'''\n"
    "    __slots__ = ()\n"
    "\n"
    "class Atom(str):\n"
    "    '''A str that Erlang receives as an atom: erlang.Atom(\"ok\").'''\n"
    "    __slots__ = ()\n"
    "    def __repr__(self):\n"
    "        return f'erlang.Atom({str.__repr__(self)})'\n"
    "\n"
    "class Error(Exception):\n"
    "    '''Raised in Python for an error that comes from Erlang.'''\n"
    "\n"
    "__all__ = ['Pid', 'Ref', 'Opaque', 'Atom', 'Error']\n";

/* Runs the module body in the module's dict. The dict is borrowed. */
static int erlang_exec(PyObject *module)
{
    PyObject *dict = PyModule_GetDict(module);
    PyObject *res = PyRun_String(erlang_src, Py_file_input, dict, dict);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

static PyModuleDef_Slot erlang_slots[] = {
    {Py_mod_exec, erlang_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef erlang_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "erlang",
    .m_doc = "The BEAM, seen from Python: Erlang term types.",
    .m_size = 0,
    .m_slots = erlang_slots,
};

PyMODINIT_FUNC pyx_erlang_init(void)
{
    return PyModuleDef_Init(&erlang_def);
}
