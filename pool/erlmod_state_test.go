package pool

import (
	"fmt"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/store"
	"github.com/erlang-python/erlang_python/store/storetest"
)

// Python (erlang.state_*) and Go meet in the same store.
func TestStateFromPython(t *testing.T) {
	c := newCtx(t, Auto)
	require.NoError(t, store.Put([]byte("go:py"), storetest.Enc(t, etf.Tuple{etf.Atom("ok"), etf.Binary("hi")})))
	assert.True(t, etf.Equal(etf.OKTuple(etf.Tuple{etf.Binary("ok"), etf.Binary("hi")}),
		eval(t, c, "__import__('erlang').state_get('go:py')")))
	run(t, c, Exec, etf.Tuple{etf.Binary("import erlang\nerlang.state_set('go:py', {'a': [1, None]})\n" +
		"for _ in range(100): erlang.state_incr('go:pyc')\nerlang.state_decr(b'go:pyc', 10)")})
	got, ok := storetest.Get(t, "go:py")
	require.True(t, ok)
	assert.True(t, etf.Equal(etf.MapOf(etf.Binary("a"), etf.List{1, etf.Atom("none")}), got))
	n, err := store.Incr([]byte("go:pyc"), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(90), n)
	assert.True(t, etf.Equal(etf.Exception("KeyError", "'go:nope'"), eval(t, c, "__import__('erlang').state_get('go:nope')")))
	store.Delete([]byte("go:py"))
	store.Delete([]byte("go:pyc"))
}

// Python's mutations are mirrored before the reply of the request that
// made them, and before any frame written after them; values are the
// terms as stored (ints as integers, anything else as converted).
func TestStateMirrorBeforeReply(t *testing.T) {
	store.Clear()
	m := storetest.NewMirror(t)
	c := newCtx(t, Auto)
	code := etf.Tuple{etf.Binary("import erlang\n" +
		"for i in range(1000): erlang.state_incr('mirror:py')\n" +
		"erlang.state_set('mirror:neg', -2 ** 63)\nerlang.state_set('mirror:big', 2 ** 64)\n" +
		"erlang.state_set('mirror:map', {'a': (1, None)})\nerlang.state_set('mirror:gone', 1)\n" +
		"erlang.state_delete('mirror:gone')\nerlang.state_delete('mirror:never')\n")}
	payload, err := etf.Encode(code)
	require.NoError(t, err)
	for round := 1; round <= 3; round++ {
		id := etf.Atom(fmt.Sprintf("py%d", round))
		idBytes, _ := etf.Encode(id)
		require.NoError(t, c.Submit(m.Out, Exec, 0, idBytes, payload))
		assert.Equal(t, etf.OK, m.Until(id))
		// all of it is in the mirror already: nothing read after the reply
		assert.Equal(t, int64(1000*round), m.Table["mirror:py"])
		assert.Equal(t, int64(math.MinInt64), m.Table["mirror:neg"])
		assert.Equal(t, 0, new(big.Int).Lsh(big.NewInt(1), 64).Cmp(m.Table["mirror:big"].(*big.Int)))
		assert.True(t, etf.Equal(etf.MapOf(etf.Binary("a"), etf.Tuple{1, etf.Atom("none")}), m.Table["mirror:map"]))
		assert.NotContains(t, m.Table, "mirror:gone")
		m.AssertMatches()
	}
	// Erlang's incr: its reply (written by Go after it) comes after its op
	n, err := store.Incr([]byte("mirror:py"), -5)
	require.NoError(t, err)
	m.Mark("after_incr")
	assert.Equal(t, n, m.Table["mirror:py"])
}
