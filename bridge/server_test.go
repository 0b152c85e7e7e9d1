package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

var (
	ref    = etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1, 2, 3}}
	ctlID  = etf.Tuple{proto.AtomCtl, ref}
	nested = etf.Tuple{proto.AtomNested, ref}
)

func badRequestOf(t *testing.T, p packet) string {
	t.Helper()
	e, ok := p.body.(etf.Tuple)
	require.True(t, ok && len(e) == 2 && e[0] == etf.ErrorAtom, "%v", p.body)
	r, ok := e[1].(etf.Tuple)
	require.True(t, ok && len(r) == 2 && r[0] == proto.AtomBadRequest, "%v", p.body)
	return string(r[1].(etf.Binary))
}

// expectReply checks that the next packet is exactly id then result, as
// the BEAM's binary_to_term will read it, and that nothing follows.
func (f *fixture) expectReply(id, result etf.Term) {
	f.t.Helper()
	p := f.next()
	assert.Equal(f.t, encodeAll(f.t, id, result), p.raw, "got %v %v", p.id, p.body)
	f.none()
}

func (f *fixture) expectBadRequest(id etf.Term, msg string) {
	f.t.Helper()
	p := f.next()
	assert.True(f.t, etf.Equal(id, p.id), "%v", p.id)
	assert.Contains(f.t, badRequestOf(f.t, p), msg)
	f.none()
}

func (f *fixture) expectDropped(log string) {
	f.t.Helper()
	f.none()
	assert.Contains(f.t, f.logs.String(), log)
}

var callerPid = etf.Pid{Node: "nonode@nohost", ID: 88, Serial: 0, Creation: 1}

// The BEAM's acks of one-way packets go to the writer.
func TestAcks(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.handle(encodeAll(t, etf.Tuple{proto.TagLogAck, 2}))
	f.handle(encodeAll(t, etf.Tuple{proto.TagSendAck, 16}))
	f.handle(encodeAll(t, etf.Tuple{proto.TagSendAck, etf.Atom("x")})) // ignored
	f.none()
	f.out.mu.Lock()
	defer f.out.mu.Unlock()
	assert.Equal(t, int64(2), f.out.logAcks)
	assert.Equal(t, int64(16), f.out.sendAcks)
}

func TestRequestsGoToSubmit(t *testing.T) {
	body := encodeAll(t, etf.Tuple{etf.Binary("math"), etf.Binary("sqrt"), etf.List{16}, etf.Map{}})
	for _, c := range []struct {
		name   string
		header etf.Tuple
		want   submission
	}{
		{"call", etf.Tuple{proto.TagCall, ref, 1}, submission{op: proto.Call}},
		{"eval", etf.Tuple{proto.TagEval, ref, 1}, submission{op: proto.Eval}},
		{"exec", etf.Tuple{proto.TagExec, ref, 1}, submission{op: proto.Exec}},
		{"slot none", etf.Tuple{proto.TagCall, ref, 1, etf.None}, submission{op: proto.Call}},
		{"chain", etf.Tuple{proto.TagEval, ref, 1, etf.None, 12}, submission{op: proto.Eval, chain: 12}},
		{"nested", etf.Tuple{proto.TagExec, nested, 1, etf.None, 3}, submission{op: proto.Exec, chain: 3}},
		{"cast", etf.Tuple{proto.TagCall, etf.Tuple{proto.AtomCast, ref}, 1}, submission{op: proto.Call}},
		{"slot", etf.Tuple{proto.TagCall, ref, 1, etf.Tuple{proto.AtomSlot, etf.Binary("/dev/shm/s"), 70000}},
			submission{op: proto.Call, path: "/dev/shm/s", size: 70000}},
		{"slot and chain", etf.Tuple{proto.TagEval, nested, 1, etf.Tuple{proto.AtomSlot, etf.Binary("/s"), 9}, 4},
			submission{op: proto.Eval, chain: 4, path: "/s", size: 9}},
		{"caller", etf.Tuple{proto.TagCall, ref, 1, etf.None, etf.None, callerPid}, submission{op: proto.Call}},
		{"caller, slot and chain", etf.Tuple{proto.TagEval, nested, 1, etf.Tuple{proto.AtomSlot, etf.Binary("/s"), 9}, 4, callerPid},
			submission{op: proto.Eval, chain: 4, path: "/s", size: 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, 0)
			ctx := f.withContext(1)
			f.handle(append(encodeAll(t, c.header), body...))
			f.none()
			subs := ctx.submissions()
			require.Len(t, subs, 1)
			want := c.want
			want.id = encodeAll(t, c.header[1])
			if len(c.header) == 6 {
				want.caller = encodeAll(t, c.header[5])[1:]
			}
			if want.path == "" {
				want.payload = body
			}
			assert.Equal(t, want, subs[0])
		})
	}
}

// The id goes to the executor as the BEAM wrote it, not encoded again.
func TestRequestIDIsForwardedVerbatim(t *testing.T) {
	f := newFixture(t, nil, 0)
	ctx := f.withContext(1)
	// an alias as the BEAM writes it: its node name an ATOM_EXT
	alias := []byte{90, 0, 3, 100, 0, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's', 't',
		0, 0, 0, 0, 0, 3, 80, 248, 102, 33, 0, 1, 202, 102, 131, 146}
	pkt := []byte{131, 104, 3, 119, 4, 'e', 'x', 'e', 'c'}
	pkt = append(append(pkt, alias...), 97, 1)
	body := encodeAll(t, etf.Tuple{etf.Binary("pass")})
	f.handle(append(pkt, body...))
	f.handle(append([]byte{131, 104, 2, 119, 6, 'c', 'a', 'n', 'c', 'e', 'l'}, alias...))
	f.none()
	subs := ctx.submissions()
	require.Len(t, subs, 1)
	assert.Equal(t, append([]byte{131}, alias...), subs[0].id)
	assert.Equal(t, body, subs[0].payload)
	require.Len(t, f.pool.cancels, 1)
	assert.Equal(t, subs[0].id, f.pool.cancels[0], "the cancel matches the request's bytes")
}

// A compressed header (which the Erlang side never sends) still works:
// its id is encoded again.
func TestCompressedHeader(t *testing.T) {
	f := newFixture(t, nil, 0)
	ctx := f.withContext(1)
	enc := etf.Encoder{CompressThreshold: 8}
	head, err := enc.Encode(etf.Tuple{proto.TagCall, ref, 1, etf.None, 7, etf.Binary(make([]byte, 200))})
	require.NoError(t, err)
	require.Equal(t, byte(etf.TagCompressed), head[1])
	f.handle(head)
	f.expectBadRequest(ref, "is not a pid")
	head, err = enc.Encode(etf.Tuple{proto.TagCall, etf.Tuple{proto.AtomNested, ref, etf.Binary(make([]byte, 200))}, 1})
	require.NoError(t, err)
	f.handle(head)
	f.expectDropped("no reply address")
	assert.Empty(t, ctx.submissions())
}

func TestRequestErrors(t *testing.T) {
	body := encodeAll(t, etf.Tuple{etf.Binary("1"), etf.Map{}})
	for _, c := range []struct {
		name   string
		header etf.Tuple
		err    error // what the context's Submit returns
		result etf.Term
		bad    string // else: a bad_request with this in its message
	}{
		{name: "unknown context", header: etf.Tuple{proto.TagEval, ref, 99}, result: proto.UnknownContext(99)},
		{name: "context not an integer", header: etf.Tuple{proto.TagEval, ref, etf.Atom("one")}, result: proto.UnknownContext(etf.Atom("one"))},
		{name: "closed context", header: etf.Tuple{proto.TagEval, ref, 1}, err: ErrClosed, result: proto.UnknownContext(1)},
		{name: "queue full", header: etf.Tuple{proto.TagEval, ref, 1}, err: errBoom, result: proto.Overloaded()},
		{name: "chain 0", header: etf.Tuple{proto.TagEval, ref, 1, etf.None, 0}, bad: "chain 0 is not a positive integer"},
		{name: "chain negative", header: etf.Tuple{proto.TagEval, ref, 1, etf.None, -1}, bad: "chain -1"},
		{name: "chain atom", header: etf.Tuple{proto.TagEval, ref, 1, etf.None, etf.Atom("x")}, bad: "chain x"},
		{name: "slot atom", header: etf.Tuple{proto.TagEval, ref, 1, etf.Atom("x")}, bad: "slot x is not {slot, AbsolutePath, Size}"},
		{name: "slot arity", header: etf.Tuple{proto.TagEval, ref, 1, etf.Tuple{proto.AtomSlot, etf.Binary("/s")}}, bad: "slot"},
		{name: "slot relative", header: etf.Tuple{proto.TagEval, ref, 1, etf.Tuple{proto.AtomSlot, etf.Binary("s"), 9}}, bad: "slot"},
		{name: "slot no size", header: etf.Tuple{proto.TagEval, ref, 1, etf.Tuple{proto.AtomSlot, etf.Binary("/s"), 0}}, bad: "slot"},
		{name: "slot path atom", header: etf.Tuple{proto.TagEval, ref, 1, etf.Tuple{proto.AtomSlot, etf.Atom("/s"), 9}}, bad: "slot"},
		{name: "ctl id", header: etf.Tuple{proto.TagEval, ctlID, 1}, bad: "is not a reference, {nested, Reference} or {cast, Reference}"},
		{name: "no context", header: etf.Tuple{proto.TagCall, ref}, bad: "unknown request"},
		{name: "caller no pid", header: etf.Tuple{proto.TagCall, ref, 1, etf.None, 1, 1}, bad: "caller 1 is not a pid"},
		{name: "too long", header: etf.Tuple{proto.TagCall, ref, 1, etf.None, 1, callerPid, 1}, bad: "unknown request"},
		{name: "unknown tag", header: etf.Tuple{etf.Atom("frobnicate"), ref}, bad: "unknown request [frobnicate"},
		{name: "tag no atom", header: etf.Tuple{1, ref, 1}, bad: "unknown request"},
		{name: "cancel arity", header: etf.Tuple{proto.TagCancel, ref, 1}, bad: "unknown request"},
		{name: "info arity", header: etf.Tuple{proto.TagInfo, ctlID, 1}, bad: "unknown request"},
		{name: "cb_reply arity", header: etf.Tuple{proto.TagCbReply, ref}, bad: "unknown request"},
		{name: "create arity", header: etf.Tuple{proto.TagCreateContext, ctlID, 1}, bad: "unknown request"},
		{name: "destroy arity", header: etf.Tuple{proto.TagDestroyContext, ctlID}, bad: "unknown request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, 0)
			ctx := f.withContext(1)
			ctx.err = c.err
			f.handle(append(encodeAll(t, c.header), body...))
			if c.bad != "" {
				f.expectBadRequest(c.header[1], c.bad)
			} else {
				f.expectReply(c.header[1], c.result)
			}
			if c.err == nil {
				assert.Empty(t, ctx.submissions())
			}
		})
	}
}

// The rows of docs/PROTOCOL.md's bad-input table that the sidecar's Go
// side answers (the payload's rows are Python's: the payload goes to the
// context unread, whatever it is).
func TestBadInput(t *testing.T) {
	head := encodeAll(t, etf.Tuple{proto.TagExec, ref, 1})
	deep := append([]byte{131, 104, 3}, head[3:len(head)-2]...)
	for range etf.DefaultMaxDepth + 1 {
		deep = append(deep, 108, 0, 0, 0, 1)
	}
	deep = append(deep, 106)
	for _, c := range []struct {
		name string
		pkt  []byte
		id   etf.Term // nil: dropped, with a log line
		log  string   // the log line, when dropped
		msg  string   // the bad_request's message, when answered
	}{
		{name: "not a term", pkt: []byte{1, 2, 3}, log: "dropped a packet whose header cannot be read"},
		{name: "a 4 GiB binary in 6 bytes", pkt: []byte{131, 109, 255, 255, 255, 255}, log: "dropped a packet whose header cannot be read"},
		{name: "empty", pkt: []byte{}, log: "dropped a packet whose header cannot be read"},
		{name: "cut before its id", pkt: head[:9], log: "dropped a packet whose header cannot be read"},
		{name: "cut inside its id", pkt: head[:20], log: "dropped a packet whose header cannot be read"},
		{name: "not a tuple", pkt: encodeAll(t, etf.Atom("exec")), log: "dropped a packet with header exec"},
		{name: "a list", pkt: encodeAll(t, etf.List{proto.TagExec, ref, 1}), log: "dropped a packet with header"},
		{name: "a tuple of 1", pkt: encodeAll(t, etf.Tuple{proto.TagInfo}), log: "dropped a packet with header"},
		{name: "bad compressed header", pkt: []byte{131, 80, 0, 0, 0, 2, 1, 2, 3, 4}, log: "dropped a packet whose header cannot be read"},
		{name: "compressed bomb", pkt: []byte{131, 80, 255, 255, 255, 255, 0x78, 0x9c, 0}, log: "dropped a packet whose header cannot be read"},
		{name: "id an integer", pkt: encodeAll(t, etf.Tuple{etf.Atom("frobnicate"), 42}), log: "no reply address"},
		{name: "id an atom", pkt: encodeAll(t, etf.Tuple{proto.TagExec, etf.Atom("x"), 1}, etf.Tuple{etf.Binary("1")}), log: "no reply address"},
		{name: "id '$log'", pkt: encodeAll(t, etf.Tuple{proto.TagInfo, proto.IDLog}), log: "no reply address"},
		{name: "id {ctl, 1}", pkt: encodeAll(t, etf.Tuple{proto.TagInfo, etf.Tuple{proto.AtomCtl, 1}}), log: "no reply address"},
		{name: "id of a broken header no address", pkt: append(encodeAll(t, etf.Tuple{proto.TagExec, etf.Atom("x"), 1})[:len(encodeAll(t, etf.Tuple{proto.TagExec, etf.Atom("x"), 1}))-2], 108, 255, 255, 255, 255),
			log: "dropped a packet whose header cannot be read"},
		{name: "a length past its end after the id", pkt: append(append([]byte{131, 104, 3}, head[3:len(head)-2]...), 108, 255, 255, 255, 255, 106),
			id: ref, msg: "the header cannot be read"},
		{name: "nested too deep after the id", pkt: deep, id: ref, msg: "nested deeper"},
		{name: "a large tuple cut after the id", pkt: append([]byte{131, 105, 0, 0, 0, 9}, head[3:len(head)-2]...), id: ref, msg: "the header cannot be read"},
		{name: "a ctl id, cut", pkt: encodeAll(t, etf.Tuple{proto.TagStateFetch, ctlID, etf.Binary("key")})[:len(encodeAll(t, etf.Tuple{proto.TagStateFetch, ctlID, etf.Binary("key")}))-2], id: ctlID, msg: "the header cannot be read"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil, 0)
			ctx := f.withContext(1)
			f.handle(c.pkt)
			if c.id == nil {
				f.expectDropped(c.log)
			} else {
				f.expectBadRequest(c.id, c.msg)
			}
			assert.Empty(t, ctx.submissions())
		})
	}
}

// The payload is Python's to read: the server hands it on unread, a
// missing, cut or compressed one too.
func TestPayloadGoesUnread(t *testing.T) {
	for _, body := range [][]byte{nil, {1, 2, 3}, {131, 80, 0, 0, 0, 9}, encodeAll(t, etf.Atom("not_a_tuple"))} {
		f := newFixture(t, nil, 0)
		ctx := f.withContext(1)
		f.handle(append(encodeAll(t, etf.Tuple{proto.TagCall, ref, 1}), body...))
		f.none()
		subs := ctx.submissions()
		require.Len(t, subs, 1)
		assert.Equal(t, len(body), len(subs[0].payload))
		assert.True(t, bytes.Equal(body, subs[0].payload))
	}
}

func frame(pkt []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(pkt))), pkt...)
}

func TestTooLargeFrames(t *testing.T) {
	var in []byte
	in = append(in, frame(make([]byte, 2048))...) // no header: skipped
	big := append(encodeAll(t, etf.Tuple{proto.TagCall, ref, 1}), make([]byte, 2000)...)
	in = append(in, frame(big)...) // with a header: answered
	broken := append(append([]byte{131, 104, 3}, encodeAll(t, etf.Tuple{proto.TagCall, nested, 1})[3:]...), make([]byte, 2000)...)
	broken = append(broken[:len(broken)-2000-2], 108, 255, 255, 255, 255)
	broken = append(broken, make([]byte, 2000)...)
	in = append(in, frame(broken)...) // its id read from a header that is not whole
	late := append(make([]byte, 8000), encodeAll(t, etf.Tuple{proto.TagCall, ref, 1})...)
	in = append(in, frame(late)...) // no header in the first 4 KiB
	noAddress := append(encodeAll(t, etf.Tuple{proto.TagCall, etf.Atom("x"), 1}), make([]byte, 2000)...)
	in = append(in, frame(noAddress)...)
	in = append(in, frame(encodeAll(t, etf.Tuple{proto.TagInfo, ctlID}))...) // and on it goes
	f := newFixture(t, bytes.NewReader(in), 1024)
	require.NoError(t, f.srv.Serve())
	p := f.next()
	assert.Equal(t, ref, p.id)
	assert.Equal(t, fmt.Sprintf("a packet of %d bytes, over the limit of 1024 (--max-packet)", len(big)), badRequestOf(t, p))
	p = f.next()
	assert.True(t, etf.Equal(nested, p.id))
	assert.Contains(t, badRequestOf(t, p), "over the limit of 1024")
	p = f.next()
	assert.True(t, etf.Equal(ctlID, p.id))
	f.none()
	assert.Equal(t, 5, bytes.Count([]byte(f.logs.String()), []byte("dropped a packet: bridge: packet over the size limit")))
}

func TestCancel(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.send(etf.Tuple{proto.TagCancel, ref})
	f.send(etf.Tuple{proto.TagCancel, nested})
	f.send(etf.Tuple{proto.TagCancel, ctlID})         // no request's id: nothing
	f.send(etf.Tuple{proto.TagCancel, etf.Atom("x")}) // nothing
	f.none()
	assert.Equal(t, [][]byte{encodeAll(t, ref), encodeAll(t, nested)}, f.pool.cancels)
}

func TestCreateAndDestroyContext(t *testing.T) {
	f := newFixture(t, nil, 0)
	for i, kind := range []proto.ContextKind{proto.Auto, proto.SubInterp, proto.Worker} {
		f.send(etf.Tuple{proto.TagCreateContext, ctlID, 7 + i, etf.Atom(kind.String())})
		f.expectReply(ctlID, etf.OK)
	}
	assert.Equal(t, []fakeMade{{proto.Auto, 7}, {proto.SubInterp, 8}, {proto.Worker, 9}}, f.pool.made)
	f.send(etf.Tuple{proto.TagCreateContext, ctlID, 7, etf.Atom("auto")})
	f.expectReply(ctlID, proto.ContextExists(7))

	for _, c := range []struct {
		ctx, kind etf.Term
		msg       string
	}{
		{0, etf.Atom("auto"), "context id 0 is not a positive integer"},
		{-3, etf.Atom("auto"), "context id -3"},
		{etf.Atom("one"), etf.Atom("auto"), "context id one"},
		{10, etf.Atom("bogus"), "context kind bogus is not auto, subinterp or worker"},
		{10, etf.Binary("auto"), "context kind"},
	} {
		f.send(etf.Tuple{proto.TagCreateContext, ctlID, c.ctx, c.kind})
		f.expectBadRequest(ctlID, c.msg)
	}
	f.pool.newErr = errBoom
	f.send(etf.Tuple{proto.TagCreateContext, ctlID, 11, etf.Atom("auto")})
	f.expectReply(ctlID, etf.ErrorTuple(etf.Binary("boom")))
	f.send(etf.Tuple{proto.TagCreateContext, etf.Atom("x"), 12, etf.Atom("auto")})
	require.Eventually(t, func() bool { return strings.Contains(f.logs.String(), "no reply address") },
		5*time.Second, time.Millisecond, "answered to nobody")
	f.none()

	f.pool.mu.Lock()
	c7 := f.pool.ctxs[7]
	f.pool.mu.Unlock()
	body := encodeAll(t, etf.Tuple{etf.Binary("pass")})
	f.handle(append(encodeAll(t, etf.Tuple{proto.TagExec, ref, 7}), body...))
	f.none()
	require.Len(t, c7.submissions(), 1)
	f.send(etf.Tuple{proto.TagDestroyContext, ctlID, 7})
	f.expectReply(ctlID, etf.OK)
	assert.True(t, c7.closed)
	f.handle(append(encodeAll(t, etf.Tuple{proto.TagExec, ref, 7}), body...))
	f.expectReply(ref, proto.UnknownContext(7))
	f.send(etf.Tuple{proto.TagDestroyContext, ctlID, 7}) // gone already: still ok
	f.expectReply(ctlID, etf.OK)
	f.send(etf.Tuple{proto.TagDestroyContext, ctlID, etf.Atom("x")})
	f.expectReply(ctlID, etf.OK)
}

func TestCallbackReply(t *testing.T) {
	f := newFixture(t, nil, 0)
	ctx := f.withContext(1)
	answer := encodeAll(t, etf.OKTuple(3))
	f.handle(append(encodeAll(t, etf.Tuple{proto.TagCbReply, 5, 1}), answer...))
	f.none()
	assert.Equal(t, []submission{{cb: 5, payload: answer}}, ctx.submissions())

	f.send(etf.Tuple{proto.TagCbReply, 5, 2}, etf.OKTuple(3))
	f.expectDropped("dropped a callback reply for 5 on context 2")
	f.send(etf.Tuple{proto.TagCbReply, etf.Atom("x"), 1}, etf.OKTuple(3))
	f.expectDropped("dropped a callback reply for x on context 1")
	ctx.err = errBoom
	f.send(etf.Tuple{proto.TagCbReply, 6, 1}, etf.OKTuple(3))
	f.expectDropped("dropped a callback reply for 6 on context 1: boom")
}

func TestInfo(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.send(etf.Tuple{proto.TagInfo, ctlID})
	f.expectReply(ctlID, etf.OKTuple(etf.MapOf(
		etf.Atom("mode"), etf.Atom("subinterp"),
		etf.Atom("version"), etf.Binary("3.13.0"),
		etf.Atom("num_executors"), 4,
		etf.Atom("subinterp_supported"), true,
		etf.Atom("protocol"), proto.Version,
		etf.Atom("slot_min"), 65536,
	)))
}

// A panic while handling a packet is logged; the server goes on.
func TestPanicIsLogged(t *testing.T) {
	f := newFixture(t, nil, 0)
	f.srv.contexts[1] = nil // a nil Context: Submit panics
	f.send(etf.Tuple{proto.TagCall, ref, 1}, etf.Tuple{})
	f.expectDropped("error: dropped a packet")
	f.send(etf.Tuple{proto.TagInfo, ctlID})
	require.Equal(t, ctlID, f.next().id)
}

// {down, Ctxs} then the pid: its environments in Ctxs go (a context that
// is not there is skipped), erlang.send forgets it, nothing is answered;
// a bad one is logged and dropped.
func TestDown(t *testing.T) {
	f := newFixture(t, nil, 0)
	c1, c2, c3 := f.withContext(1), f.withContext(2), f.withContext(3)
	f.send(etf.Tuple{proto.TagDown, etf.List{1, 3, 9}}, callerPid)
	f.none()
	raw := encodeAll(t, callerPid)[1:]
	assert.Equal(t, [][]byte{raw}, c1.dropped)
	assert.Empty(t, c2.dropped)
	assert.Equal(t, [][]byte{raw}, c3.dropped)
	assert.Equal(t, [][]byte{raw}, f.pool.exited)

	f.send(etf.Tuple{proto.TagDown, etf.List{}}, callerPid) // a pid erlang.send knew alive
	f.none()
	assert.Len(t, f.pool.exited, 2)

	f.send(etf.Tuple{proto.TagDown, etf.List{1}}, etf.Atom("not_a_pid"))
	f.expectDropped("dropped a down packet: the body is not a pid")
	f.send(etf.Tuple{proto.TagDown, etf.Atom("x")}, callerPid)
	f.expectDropped("dropped a down packet: contexts are not a list")
	f.handle(encodeAll(t, etf.Tuple{proto.TagDown, etf.List{1}}))
	f.expectDropped("dropped a down packet: the body is not a versioned term")
	assert.Len(t, c1.dropped, 1)
}
