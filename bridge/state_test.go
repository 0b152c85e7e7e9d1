package bridge

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

func TestStateRequests(t *testing.T) {
	f := newFixture(t, nil, 0)
	key := etf.Binary("k")
	value := etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")})

	f.send(etf.Tuple{proto.TagStateStore, ctlID, key}, value)
	f.expectReply(ctlID, etf.OK)
	assert.Equal(t, encodeAll(t, value)[1:], f.store.m["k"], "stored as it came, without its version byte")

	f.send(etf.Tuple{proto.TagStateFetch, ctlID, key})
	f.expectReply(ctlID, etf.OKTuple(value))
	f.send(etf.Tuple{proto.TagStateKeys, ctlID})
	f.expectReply(ctlID, etf.List{key})
	f.send(etf.Tuple{proto.TagStateRemove, ctlID, key})
	f.expectReply(ctlID, etf.OK)
	f.send(etf.Tuple{proto.TagStateRemove, ctlID, key}) // a missing key is no error
	f.expectReply(ctlID, etf.OK)
	f.send(etf.Tuple{proto.TagStateFetch, ctlID, key})
	f.expectReply(ctlID, etf.ErrorTuple(proto.AtomNotFound))

	n := etf.Binary("n")
	f.send(etf.Tuple{proto.TagStateIncr, ctlID, n, 5})
	f.expectReply(ctlID, etf.OKTuple(5))
	f.send(etf.Tuple{proto.TagStateIncr, ctlID, n, -3})
	f.expectReply(ctlID, etf.OKTuple(2))
	for _, c := range []struct {
		err    error
		result etf.Term
	}{
		{ErrNotInteger, etf.ErrorTuple(etf.Tuple{proto.AtomNotInteger, n})},
		{ErrOverflow, etf.ErrorTuple(etf.Tuple{proto.AtomOverflow, n})},
		{errBoom, etf.ErrorTuple(etf.Binary("boom"))},
	} {
		f.store.incrErr = c.err
		f.send(etf.Tuple{proto.TagStateIncr, ctlID, n, 1})
		f.expectReply(ctlID, c.result)
	}
	f.store.incrErr = nil

	f.store.putErr = errBoom
	f.send(etf.Tuple{proto.TagStateStore, ctlID, key}, 1)
	f.expectReply(ctlID, etf.ErrorTuple(etf.Binary("boom")))
	f.store.putErr = nil

	f.send(etf.Tuple{proto.TagStateClear, ctlID})
	f.expectReply(ctlID, etf.OK)
	assert.Empty(t, f.store.m)
	f.send(etf.Tuple{proto.TagStateKeys, ctlID})
	f.expectReply(ctlID, etf.List{})
}

func TestStateBadRequests(t *testing.T) {
	compressing := etf.Encoder{CompressThreshold: 8}
	compressed, err := compressing.Encode(etf.Binary(make([]byte, 100)))
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		pkt  []byte
		msg  string
	}{
		{"key an atom", encodeAll(t, etf.Tuple{proto.TagStateFetch, ctlID, etf.Atom("k")}), "state key k is not a binary"},
		{"no key", encodeAll(t, etf.Tuple{proto.TagStateFetch, ctlID}), "a state request with 0 arguments, not 1"},
		{"keys with a key", encodeAll(t, etf.Tuple{proto.TagStateKeys, ctlID, etf.Binary("k")}), "with 1 arguments, not 0"},
		{"incr by a float", encodeAll(t, etf.Tuple{proto.TagStateIncr, ctlID, etf.Binary("n"), 1.5}), "state_incr by 1.5, not a 64-bit integer"},
		{"incr past 64 bits", encodeAll(t, etf.Tuple{proto.TagStateIncr, ctlID, etf.Binary("n"), uint64(1 << 63)}), "not a 64-bit integer"},
		{"incr without N", encodeAll(t, etf.Tuple{proto.TagStateIncr, ctlID, etf.Binary("n")}), "with 1 arguments, not 2"},
		{"store without value", encodeAll(t, etf.Tuple{proto.TagStateStore, ctlID, etf.Binary("k")}), "state_store needs the value"},
		{"store compressed", append(encodeAll(t, etf.Tuple{proto.TagStateStore, ctlID, etf.Binary("k")}), compressed...), "state_store needs the value"},
		{"load no list", encodeAll(t, etf.Tuple{proto.TagStateLoad, ctlID}, etf.Atom("nolist")), "state_load: the payload is not a list"},
		{"load atom key", encodeAll(t, etf.Tuple{proto.TagStateLoad, ctlID}, etf.List{etf.Tuple{etf.Atom("a"), 1}}), "state_load: element 1"},
		{"load arity", encodeAll(t, etf.Tuple{proto.TagStateLoad, ctlID}, etf.List{etf.Tuple{etf.Binary("a"), 1, 2}}), "state_load: element 1"},
		{"load no payload", encodeAll(t, etf.Tuple{proto.TagStateLoad, ctlID}), "state_load: the payload is not"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, 0)
			f.store.m["old"] = []byte{97, 1}
			f.handle(c.pkt)
			f.expectBadRequest(ctlID, c.msg)
			assert.Equal(t, map[string][]byte{"old": {97, 1}}, f.store.m, "the store is left alone")
			assert.False(t, f.store.mirror)
		})
	}
}

// state_load replaces the store and turns the mirror on before its reply.
func TestStateLoad(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.store.m["old"] = []byte{97, 1}
	value := etf.Tuple{etf.Atom("x"), etf.Binary("y")}
	f.send(etf.Tuple{proto.TagStateLoad, ctlID}, etf.List{etf.Tuple{etf.Binary("a"), 41}, etf.Tuple{etf.Binary("b"), value}})
	f.expectReply(ctlID, etf.OK)
	assert.Equal(t, map[string][]byte{"a": encodeAll(t, 41)[1:], "b": encodeAll(t, value)[1:]}, f.store.m)
	assert.True(t, f.store.mirror)
	assert.Equal(t, 0, f.store.mirrorAt, "the mirror starts before the reply")

	f = newFixture(t, nil, 0)
	f.store.loadErr = errBoom
	f.send(etf.Tuple{proto.TagStateLoad, ctlID}, etf.List{})
	f.expectReply(ctlID, etf.ErrorTuple(etf.Binary("boom")))
	assert.False(t, f.store.mirror)
}

// A state request whose id is no reply address is done, and answered to
// nobody: a found key too.
func TestStateRequestWithoutAddress(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.store.m["k"] = []byte{97, 1}
	for _, op := range []etf.Atom{proto.TagStateFetch, proto.TagStateRemove} {
		f.send(etf.Tuple{op, etf.Atom("nobody"), etf.Binary("k")})
		f.expectDropped("no reply address")
	}
	assert.Empty(t, f.store.m)
}
