package bridge

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/erlang-python/erlang_python/etf"
)

func TestServerSharedState(t *testing.T) {
	h := newHarness(t, 0)
	key := etf.Binary("bridge:k")
	value := etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")})
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_store"), key}, value))
	assert.True(t, etf.Equal(etf.OKTuple(value), h.ask(etf.Tuple{etf.Atom("state_fetch"), key})))
	assert.Contains(t, h.ask(etf.Tuple{etf.Atom("state_keys")}), key)
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_remove"), key}))
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_remove"), key}), "a missing key is no error")
	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Atom("not_found")), h.ask(etf.Tuple{etf.Atom("state_fetch"), key})))

	counter := etf.Binary("bridge:n")
	assert.True(t, etf.Equal(etf.OKTuple(5), h.ask(etf.Tuple{etf.Atom("state_incr"), counter, 5})))
	assert.True(t, etf.Equal(etf.OKTuple(2), h.ask(etf.Tuple{etf.Atom("state_incr"), counter, -3})))
	assert.True(t, etf.Equal(etf.OKTuple(2), h.ask(etf.Tuple{etf.Atom("state_fetch"), counter})))
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_store"), counter}, etf.Binary("two")))
	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Tuple{etf.Atom("not_integer"), counter}),
		h.ask(etf.Tuple{etf.Atom("state_incr"), counter, 1})))

	// bad requests are answered, not dropped
	for _, bad := range []etf.Tuple{
		{etf.Atom("state_fetch"), etf.Atom("not_a_binary")},
		{etf.Atom("state_fetch")},
		{etf.Atom("state_incr"), counter, 1.5},
		{etf.Atom("state_store"), counter}, // no value
	} {
		res := h.ask(bad)
		assert.Equal(t, etf.Atom("bad_request"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v: %v", bad, res)
	}

	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_clear")}))
	assert.Empty(t, h.ask(etf.Tuple{etf.Atom("state_keys")}))
}
