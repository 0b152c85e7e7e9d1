package pool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pyetf"
)

// erlang.Atom counts the new names of this process (pyetf/atoms.c), in
// every context: past the budget it raises AtomLimitError, a ValueError
// that names max_atoms; names made before, and known ones, stay free; an
// exception class with a new name is named by its nearest known base.
func TestAtomLimit(t *testing.T) {
	old := pyetf.MaxAtoms()
	t.Cleanup(func() { pyetf.SetMaxAtoms(old); pyetf.SetAtomAsks(1000, 100) })
	pyetf.SetAtomAsks(0, 0) // no BEAM here to ask (erlang.call would wait for ever)
	a, b := newCtx(t, Auto), newCtx(t, Auto)
	pyetf.SetMaxAtoms(pyetf.AtomsSpent() + 2)
	require.NoError(t, pyetf.LoadAtoms(pyetf.AtomsSpent(), [][]byte{[]byte("KeyError")}))

	assert.True(t, etf.Equal(etf.OKTuple(etf.Atom("lim_a")), eval(t, a, "__import__('erlang').Atom('lim_a')")))
	// one set for the process: the name made in a is free in b, a new one costs
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{etf.Atom("lim_a"), etf.Atom("lim_b")}),
		eval(t, b, "[__import__('erlang').Atom(n) for n in ('lim_a', 'lim_b')]")))
	res := eval(t, a, "__import__('erlang').Atom('lim_c')")
	tup, ok := res.(etf.Tuple)
	require.True(t, ok && len(tup) == 2 && tup[0] == etf.ErrorAtom, "%#v", res)
	exc := tup[1].(etf.Tuple)
	assert.Equal(t, etf.Atom("AtomLimitError"), exc[0])
	assert.Contains(t, string(exc[1].(etf.Binary)), "max_atoms")
	assert.True(t, etf.Equal(etf.OKTuple(true), eval(t, a,
		"issubclass(__import__('erlang').AtomLimitError, ValueError)")))
	// known and made names still go
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{etf.Atom("ok"), etf.Atom("lim_b"), etf.Atom("KeyError")}),
		eval(t, a, "[__import__('erlang').Atom(n) for n in ('ok', 'lim_b', 'KeyError')]")))
	// an exception class of a new name: its nearest known base
	res = run(t, a, Exec, etf.Tuple{etf.Binary("raise type('LimExc', (KeyError,), {})('x')")})
	assert.Equal(t, etf.Atom("KeyError"), res.(etf.Tuple)[1].(etf.Tuple)[0])
	res = run(t, a, Exec, etf.Tuple{etf.Binary("raise type('LimExc2', (Exception,), {})('x')")})
	assert.Equal(t, etf.Atom("Exception"), res.(etf.Tuple)[1].(etf.Tuple)[0])
}
