package bridge

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/store"
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

// state_load replaces the store, mirrors nothing, and turns the mirror on:
// from then on a mutation's '$state' packet comes before its reply.
func TestServerStateLoad(t *testing.T) {
	h := newHarness(t, 0)
	t.Cleanup(func() { // the mirror off again, for the other tests
		if f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			if o, err := port.NewOutput(f); err == nil {
				store.Mirror(o, false)
			}
		}
	})
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_store"), etf.Binary("load:old")}, 1))
	entries := etf.List{
		etf.Tuple{etf.Binary("load:a"), 41},
		etf.Tuple{etf.Binary("load:b"), etf.Tuple{etf.Atom("x"), etf.Binary("y")}},
	}
	// bad payloads leave the store alone
	for _, bad := range []etf.Term{
		etf.Atom("nolist"),
		etf.List{etf.Binary("load:a")},
		etf.List{etf.Tuple{etf.Atom("load:a"), 1}},
		etf.List{etf.Tuple{etf.Binary("load:a"), 1, 2}},
	} {
		res := h.ask(etf.Tuple{etf.Atom("state_load")}, bad)
		assert.Equal(t, etf.Atom("bad_request"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v: %v", bad, res)
	}
	assert.True(t, etf.Equal(etf.OKTuple(1), h.ask(etf.Tuple{etf.Atom("state_fetch"), etf.Binary("load:old")})))

	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("state_load")}, entries))
	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Atom("not_found")), h.ask(etf.Tuple{etf.Atom("state_fetch"), etf.Binary("load:old")})))
	assert.True(t, etf.Equal(etf.OKTuple(etf.Tuple{etf.Atom("x"), etf.Binary("y")}),
		h.ask(etf.Tuple{etf.Atom("state_fetch"), etf.Binary("load:b")})))

	// now mirrored, before the reply
	id := h.ref()
	h.send(etf.Tuple{etf.Atom("state_incr"), id, etf.Binary("load:a"), 1})
	gotID, ops := h.reply()
	require.Equal(t, etf.Atom("$state"), gotID)
	assert.True(t, etf.Equal(etf.List{etf.Tuple{etf.Atom("set"), etf.Binary("load:a"), 42}}, ops), "%v", ops)
	gotID, res := h.reply()
	require.Equal(t, id, gotID)
	assert.True(t, etf.Equal(etf.OKTuple(42), res))

	id = h.ref()
	h.send(etf.Tuple{etf.Atom("state_clear"), id})
	gotID, ops = h.reply()
	require.Equal(t, etf.Atom("$state"), gotID)
	assert.Equal(t, etf.List{etf.Atom("clear")}, ops)
	gotID, _ = h.reply()
	require.Equal(t, id, gotID)
}
