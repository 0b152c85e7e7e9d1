package proto

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
)

var (
	ref    = etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1, 2, 3}}
	ctlID  = etf.Tuple{AtomCtl, ref}
	nested = etf.Tuple{AtomNested, ref}
)

func encode(t *testing.T, terms ...etf.Term) []byte {
	t.Helper()
	var b []byte
	for _, term := range terms {
		e, err := etf.Encode(term)
		require.NoError(t, err)
		b = append(b, e...)
	}
	return b
}

func TestOpsAndKinds(t *testing.T) {
	for tag, op := range map[etf.Atom]Op{TagCall: Call, TagEval: Eval, TagExec: Exec} {
		got, ok := OpOf(tag)
		assert.True(t, ok)
		assert.Equal(t, op, got)
		assert.Equal(t, string(tag), op.String())
	}
	_, ok := OpOf(TagInfo)
	assert.False(t, ok)
	assert.Equal(t, "op(0)", Op(0).String())
	for _, k := range []ContextKind{Auto, SubInterp, Worker} {
		got, ok := KindOf(etf.Atom(k.String()))
		assert.True(t, ok)
		assert.Equal(t, k, got)
	}
	_, ok = KindOf("bogus")
	assert.False(t, ok)
	assert.Equal(t, "kind(9)", ContextKind(9).String())
}

func TestIDs(t *testing.T) {
	for _, id := range []etf.Term{ref, nested, etf.Tuple{AtomCast, ref}} {
		assert.True(t, IsRequestID(id), "%v", id)
		assert.True(t, IsReplyID(id), "%v", id)
	}
	assert.False(t, IsRequestID(ctlID))
	assert.True(t, IsReplyID(ctlID))
	for _, id := range []etf.Term{etf.Atom("x"), 42, etf.Tuple{AtomCtl, 1}, etf.Tuple{AtomNested, 1},
		etf.Tuple{AtomCast, 1}, etf.Tuple{AtomCast, ref, 1}, etf.Tuple{AtomNested, ref, 1}, etf.Tuple{etf.Atom("other"), ref}, IDLog, etf.Tuple{IDCallback, 1}} {
		assert.False(t, IsReplyID(id), "%v", id)
		assert.False(t, IsRequestID(id), "%v", id)
	}
}

func TestDecodeHeader(t *testing.T) {
	body := encode(t, etf.Tuple{etf.Binary("pass")})
	pkt := append(encode(t, etf.Tuple{TagExec, nested, 7, etf.None, 3}), body...)
	h, err := DecodeHeader(pkt)
	require.NoError(t, err)
	assert.Equal(t, TagExec, h.Tag)
	assert.True(t, etf.Equal(nested, h.ID))
	assert.True(t, etf.Equal(etf.Tuple{7, etf.None, 3}, h.Args()))
	assert.Equal(t, body, pkt[h.Len:])
	idBytes := encode(t, nested)
	assert.Equal(t, idBytes[1:], []byte(h.RawID))
	got, err := h.AppendID([]byte("x"))
	require.NoError(t, err)
	assert.Equal(t, append([]byte("x"), idBytes...), got)

	assert.Nil(t, h.RawCaller)

	// the caller's pid, sixth: its bytes as they came
	pid := etf.Pid{Node: "a@b", ID: 5, Serial: 1, Creation: 9}
	h, err = DecodeHeader(encode(t, etf.Tuple{TagCall, ref, 1, etf.None, etf.None, pid}))
	require.NoError(t, err)
	assert.Equal(t, encode(t, pid)[1:], []byte(h.RawCaller))
	assert.Equal(t, encode(t, ref)[1:], []byte(h.RawID))
	h, err = DecodeHeader(encode(t, etf.Tuple{TagCall, ref, 1, etf.None, etf.None, etf.Atom("x")}))
	require.NoError(t, err)
	assert.Nil(t, h.RawCaller)

	// a large tuple, a tag that is no atom
	large := make(etf.Tuple, 300)
	large[0], large[1] = 5, ref
	for i := 2; i < len(large); i++ {
		large[i] = 0
	}
	h, err = DecodeHeader(encode(t, large))
	require.NoError(t, err)
	assert.Equal(t, etf.Atom(""), h.Tag)
	assert.Equal(t, encode(t, ref)[1:], []byte(h.RawID))

	// compressed: no raw id, the id is encoded again
	c := etf.Encoder{CompressThreshold: 8}
	cpkt, err := c.Encode(etf.Tuple{TagCall, ref, etf.Binary(make([]byte, 100))})
	require.NoError(t, err)
	require.Equal(t, byte(etf.TagCompressed), cpkt[1])
	h, err = DecodeHeader(cpkt)
	require.NoError(t, err)
	assert.Nil(t, h.RawID)
	got, err = h.AppendID(nil)
	require.NoError(t, err)
	assert.Equal(t, encode(t, ref), got)

	// no header
	for _, bad := range []etf.Term{etf.Atom("x"), etf.Tuple{TagInfo}, etf.List{TagInfo, ref}} {
		_, err := DecodeHeader(encode(t, bad))
		var nh *NotHeaderError
		require.ErrorAs(t, err, &nh, "%v", bad)
		assert.True(t, etf.Equal(bad, nh.Term))
		assert.Contains(t, err.Error(), "not a tuple")
	}
	_, err = DecodeHeader([]byte{1, 2, 3})
	var se *etf.SyntaxError
	assert.ErrorAs(t, err, &se)
}

func TestHeaderID(t *testing.T) {
	head := encode(t, etf.Tuple{TagExec, ref, 1})
	// {exec, Id, <a list claiming 4G elements>}
	broken := append(append([]byte{131, 104, 3}, head[3:len(head)-2]...), 108, 255, 255, 255, 255, 106)
	id, ok := HeaderID(broken)
	require.True(t, ok)
	assert.Equal(t, ref, id)
	// cut short after the id, in a large tuple that claims more than is there
	large := append([]byte{131, 105, 255, 255, 255, 255}, head[3:len(head)-2]...)
	id, ok = HeaderID(large)
	require.True(t, ok)
	assert.Equal(t, ref, id)
	for name, bad := range map[string][]byte{
		"empty":          {},
		"short":          {131, 104},
		"no version":     head[1:],
		"not a tuple":    encode(t, etf.List{TagExec, ref}),
		"arity 1":        {131, 104, 1, 97, 1},
		"large arity 1":  {131, 105, 0, 0, 0, 1, 97, 1},
		"large cut":      {131, 105, 0, 0},
		"no id":          {131, 104, 3, 97, 1},
		"bad first":      {131, 104, 3, 200, 97, 1},
		"id no address":  encode(t, etf.Tuple{TagExec, etf.Atom("x"), 1}),
		"id is a '$log'": encode(t, etf.Tuple{TagExec, IDLog}),
	} {
		_, ok := HeaderID(bad)
		assert.False(t, ok, name)
	}
	id, ok = HeaderID(encode(t, etf.Tuple{TagInfo, ctlID}))
	assert.True(t, ok)
	assert.True(t, etf.Equal(ctlID, id))
}

func TestBuilders(t *testing.T) {
	pkt, err := AppendReply([]byte("x"), ref, etf.OK)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("x"), encode(t, ref, etf.OK)...), pkt)
	pkt, err = AppendReply([]byte("x"), etf.Atom("nobody"), etf.OK)
	assert.Error(t, err)
	assert.Equal(t, []byte("x"), pkt)
	_, err = AppendPacket(nil, IDLog, etf.Tuple{nil})
	assert.Error(t, err)

	result := encode(t, etf.OKTuple(3))
	pkt, err = AppendReply(nil, ref, etf.RawTerm(result[1:]))
	require.NoError(t, err)
	assert.Equal(t, encode(t, ref, etf.OKTuple(3)), pkt, "a result already encoded")

	prefixed, err := etf.AppendTerm(AppendOKPrefix(nil), etf.Binary("v"))
	require.NoError(t, err)
	assert.Equal(t, encode(t, etf.OKTuple(etf.Binary("v"))), prefixed)

	assert.Equal(t, encode(t, IDExit, etf.Tuple{AtomStuck, 4, 1500}), AppendStuck(nil, 4, 1500*time.Millisecond))

	assert.Equal(t, encode(t, etf.ErrorTuple(etf.Tuple{AtomBadRequest, etf.Binary("chain 3 is bad")})),
		encode(t, BadRequest("chain %d is bad", 3)))
	assert.Equal(t, encode(t, etf.ErrorTuple(etf.Tuple{AtomUnknownContext, 9})), encode(t, UnknownContext(9)))
	assert.Equal(t, encode(t, etf.ErrorTuple(etf.Tuple{AtomContextExists, 9})), encode(t, ContextExists(9)))
	assert.Equal(t, encode(t, etf.ErrorTuple(etf.Tuple{AtomOverloaded, AtomQueue})), encode(t, Overloaded()))
}

func TestInfoResult(t *testing.T) {
	res := InfoResult(Info{Mode: "subinterp", PythonVersion: "3.13.0", NumExecutors: 4, SubinterpSupported: true, SlotMin: 65536})
	want := etf.OKTuple(etf.MapOf(
		etf.Atom("mode"), etf.Atom("subinterp"),
		etf.Atom("version"), etf.Binary("3.13.0"),
		etf.Atom("num_executors"), 4,
		etf.Atom("subinterp_supported"), true,
		etf.Atom("protocol"), 4,
		etf.Atom("slot_min"), 65536,
	))
	assert.Equal(t, encode(t, want), encode(t, res))
	assert.Equal(t, 4, Version)
}

func TestStateOps(t *testing.T) {
	args := map[StateOp]int{StateStore: 1, StateFetch: 1, StateRemove: 1, StateKeys: 0, StateClear: 0, StateIncr: 2, StateLoad: 0}
	for tag, op := range map[etf.Atom]StateOp{TagStateStore: StateStore, TagStateFetch: StateFetch,
		TagStateRemove: StateRemove, TagStateKeys: StateKeys, TagStateClear: StateClear,
		TagStateIncr: StateIncr, TagStateLoad: StateLoad} {
		got, ok := StateOpOf(tag)
		assert.True(t, ok, tag)
		assert.Equal(t, op, got)
		assert.Equal(t, args[op], op.Args(), tag)
	}
	_, ok := StateOpOf(TagCall)
	assert.False(t, ok)

	v, ok := StoredValue(encode(t, 5))
	assert.True(t, ok)
	assert.Equal(t, encode(t, 5)[1:], v)
	c := etf.Encoder{CompressThreshold: 8}
	compressed, _ := c.Encode(etf.Binary(make([]byte, 100)))
	for _, bad := range [][]byte{nil, {131}, {130, 97, 1}, compressed} {
		_, ok := StoredValue(bad)
		assert.False(t, ok, "%v", bad)
	}
}

func TestDecodeStateEntries(t *testing.T) {
	value := etf.Tuple{etf.Atom("x"), etf.Binary("y")}
	entries, err := DecodeStateEntries(encode(t, etf.List{
		etf.Tuple{etf.Binary("a"), 41},
		etf.Tuple{etf.Binary("b"), value},
	}))
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, "a", string(entries[0].Key))
	assert.Equal(t, encode(t, 41)[1:], entries[0].Value)
	assert.Equal(t, "b", string(entries[1].Key))
	assert.Equal(t, encode(t, value)[1:], entries[1].Value)

	entries, err = DecodeStateEntries(encode(t, etf.List{}))
	require.NoError(t, err)
	assert.Empty(t, entries)

	for name, bad := range map[string][]byte{
		"empty":        nil,
		"no version":   encode(t, etf.List{})[1:],
		"not a list":   encode(t, etf.Atom("nolist")),
		"no tuple":     encode(t, etf.List{etf.Binary("a")}),
		"atom key":     encode(t, etf.List{etf.Tuple{etf.Atom("a"), 1}}),
		"arity 3":      encode(t, etf.List{etf.Tuple{etf.Binary("a"), 1, 2}}),
		"improper":     encode(t, etf.ImproperList{Elems: []etf.Term{etf.Tuple{etf.Binary("a"), 1}}, Tail: 3}),
		"too long":     {131, 108, 0, 0, 1, 0, 106},
		"no value":     {131, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, 'a'},
		"bad value":    {131, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, 'a', 200, 106, 106, 106, 106, 106, 106, 106},
		"cut key":      {131, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 9, 'a', 97, 1, 106},
		"string list":  encode(t, etf.List{1, 2, 3}),
		"header only":  {131, 108, 0, 0, 0, 0},
		"tail missing": {131, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, 'a', 97, 1, 97, 1, 97, 1},
	} {
		_, err := DecodeStateEntries(bad)
		assert.Error(t, err, name)
	}
}
