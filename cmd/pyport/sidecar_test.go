//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/proto"
	"github.com/erlang-python/erlang_python/store"
)

// These tests run bridge's server over the real pool, through the
// adapters of sidecar.go, in this process: the routing itself is tested
// without CPython in bridge.

var (
	testPoolOnce sync.Once
	testPool     *pool.Pool
	testPoolErr  error
)

// startTestPool starts Python in this process, once.
func startTestPool(t *testing.T) *pool.Pool {
	testPoolOnce.Do(func() { testPool, testPoolErr = pool.Start(pool.Config{NumExecutors: 2}) })
	require.NoError(t, testPoolErr)
	return testPool
}

// harness runs the sidecar's server (newServer: bridge over the real pool)
// over pipes, as the BEAM would see it.
type harness struct {
	t       *testing.T
	in      *io.PipeWriter
	replies chan [2]etf.Term
	nextRef uint32
}

func newHarness(t *testing.T, maxPacket int) *harness {
	inR, inW := io.Pipe()
	// A real pipe: executors write replies to its descriptor in C. It
	// stays open after the test, as executors may hold its Output.
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	out, err := port.NewOutput(outW)
	require.NoError(t, err)
	h := &harness{t: t, in: inW, replies: make(chan [2]etf.Term, 64)}
	srv := newServer(startTestPool(t), out, inR, maxPacket, log.New(io.Discard, "", 0))
	go func() { _ = srv.Serve() }()
	go func() {
		frames := bridge.NewFrameReader(outR, 0)
		for {
			f, err := frames.Next()
			if err != nil {
				close(h.replies)
				return
			}
			var d etf.Decoder
			id, n, err := d.DecodePrefix(f)
			require.NoError(t, err)
			if len(f) == n+9 && f[n] == 0 { // the result is in the slot
				h.replies <- [2]etf.Term{id, etf.Tuple{etf.Atom("in_slot"), int64(binary.BigEndian.Uint64(f[n+1:]))}}
				continue
			}
			res, err := (&etf.Decoder{CopyBinaries: true}).Decode(f[n:])
			require.NoError(t, err)
			h.replies <- [2]etf.Term{id, res}
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return h
}

func (h *harness) ref() etf.Ref {
	h.nextRef++
	return etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{h.nextRef}}
}

func (h *harness) send(parts ...etf.Term) {
	var pkt []byte
	for _, p := range parts {
		b, err := etf.Encode(p)
		require.NoError(h.t, err)
		pkt = append(pkt, b...)
	}
	h.raw(pkt)
}

func (h *harness) raw(pkt []byte) {
	_, err := h.in.Write(binary.BigEndian.AppendUint32(nil, uint32(len(pkt))))
	require.NoError(h.t, err)
	_, err = h.in.Write(pkt)
	require.NoError(h.t, err)
}

func (h *harness) reply() (etf.Term, etf.Term) {
	select {
	case r := <-h.replies:
		return r[0], r[1]
	case <-time.After(20 * time.Second):
		h.t.Fatal("no reply in 20 s")
		return nil, nil
	}
}

// ask sends a request and returns its result, checking the reply's id.
func (h *harness) ask(header etf.Tuple, payload ...etf.Term) etf.Term {
	id := h.ref()
	header = append(etf.Tuple{header[0], id}, header[1:]...)
	h.send(append([]etf.Term{header}, payload...)...)
	gotID, res := h.reply()
	require.Equal(h.t, id, gotID)
	return res
}

func TestServerCallsAndContexts(t *testing.T) {
	h := newHarness(t, 0)
	info := h.ask(etf.Tuple{etf.Atom("info")})
	tag, _ := etf.Tag(info)
	require.Equal(t, etf.OK, tag)
	m := info.(etf.Tuple)[1].(etf.Map)
	protocol, _ := m.Get(etf.Atom("protocol"))
	assert.True(t, etf.Equal(proto.Version, protocol), "%v", info)
	slotMin, _ := m.Get(etf.Atom("slot_min"))
	assert.True(t, etf.Equal(65536, slotMin), "%v", info)
	mode, _ := m.Get(etf.Atom("mode"))
	assert.Equal(t, etf.Atom(startTestPool(t).Mode()), mode)
	require.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("create_context"), 7, etf.Atom("auto")}))
	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Tuple{etf.Atom("context_exists"), 7}),
		h.ask(etf.Tuple{etf.Atom("create_context"), 7, etf.Atom("auto")})))

	res := h.ask(etf.Tuple{etf.Atom("call"), 7}, etf.Tuple{etf.Binary("math"), etf.Binary("sqrt"), etf.List{16}, etf.Map{}})
	assert.True(t, etf.Equal(etf.OKTuple(4.0), res), "%#v", res)
	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("exec"), 7}, etf.Tuple{etf.Binary("import os; os.write(1, b'stray')")}))
	assert.True(t, etf.Equal(etf.OKTuple(3), h.ask(etf.Tuple{etf.Atom("eval"), 7},
		etf.Tuple{etf.Binary("a + b"), etf.MapOf(etf.Atom("a"), 1, etf.Atom("b"), 2)})))

	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Tuple{etf.Atom("unknown_context"), 99}),
		h.ask(etf.Tuple{etf.Atom("eval"), 99}, etf.Tuple{etf.Binary("1"), etf.Map{}})))
	tag, _ = etf.Tag(h.ask(etf.Tuple{etf.Atom("frobnicate")}))
	assert.Equal(t, etf.ErrorAtom, tag)
	tag, _ = etf.Tag(h.ask(etf.Tuple{etf.Atom("create_context"), 8, etf.Atom("bogus")}))
	assert.Equal(t, etf.ErrorAtom, tag)

	assert.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("destroy_context"), 7}))
	assert.True(t, etf.Equal(etf.ErrorTuple(etf.Tuple{etf.Atom("unknown_context"), 7}),
		h.ask(etf.Tuple{etf.Atom("eval"), 7}, etf.Tuple{etf.Binary("1"), etf.Map{}})))
}

func TestServerSendsTracebacksToTheLogger(t *testing.T) {
	h := newHarness(t, 0)
	require.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("create_context"), 3, etf.Atom("auto")}))
	id := h.ref()
	h.send(etf.Tuple{etf.Atom("eval"), id, 3}, etf.Tuple{etf.Binary("undefined_name"), etf.Map{}})
	logID, batch := h.reply()
	require.Equal(t, etf.Atom("$log"), logID)
	e := batch.(etf.Tuple)[1].(etf.List)[0].(etf.Tuple) // {Dropped, [{Level, Ctx, Caller, Text}]}
	assert.Equal(t, etf.Atom("info"), e[0])
	assert.True(t, etf.Equal(3, e[1]))
	assert.Equal(t, etf.Atom("undefined"), e[2]) // a header without the caller
	assert.Contains(t, string(e[3].(etf.Binary)), "NameError: name 'undefined_name' is not defined")
	gotID, res := h.reply()
	assert.Equal(t, id, gotID)
	tag, _ := etf.Tag(res)
	assert.Equal(t, etf.ErrorAtom, tag)
}

func TestServerSurvivesBadPackets(t *testing.T) {
	h := newHarness(t, 1024)
	require.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("create_context"), 1, etf.Atom("auto")}))
	h.raw([]byte{1, 2, 3})                      // not a term: dropped
	h.raw([]byte{131, 109, 255, 255, 255, 255}) // a 4 GiB binary in 6 bytes: dropped
	h.raw(make([]byte, 2048))                   // over --max-packet, no header: skipped
	big := h.ref()                              // over --max-packet, with a header: answered
	h.send(etf.Tuple{etf.Atom("call"), big, 1}, etf.Tuple{etf.Binary("x"), etf.Binary(make([]byte, 2000))})
	gotID, res := h.reply()
	assert.Equal(t, big, gotID)
	assert.Equal(t, etf.Atom("bad_request"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v", res)
	h.send(etf.Tuple{etf.Atom("call"), h.ref(), 1}) // no payload: a Python error, not a crash
	_, res = h.reply()
	tag, _ := etf.Tag(res)
	assert.Equal(t, etf.ErrorAtom, tag)
	assert.True(t, etf.Equal(etf.OKTuple(2), h.ask(etf.Tuple{etf.Atom("eval"), 1}, etf.Tuple{etf.Binary("1 + 1"), etf.Map{}})))
}

func TestServerCancelStopsRunawayCode(t *testing.T) {
	h := newHarness(t, 0)
	require.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("create_context"), 1, etf.Atom("auto")}))
	loop := h.ref()
	h.send(etf.Tuple{etf.Atom("exec"), loop, 1}, etf.Tuple{etf.Binary("while True: pass")})
	time.Sleep(100 * time.Millisecond)
	h.send(etf.Tuple{etf.Atom("cancel"), loop})
	// The interrupted request still gets its one reply, then the context serves.
	gotID, res := h.reply()
	assert.Equal(t, loop, gotID)
	assert.True(t, etf.Equal(etf.Exception("KeyboardInterrupt", ""), res), "%v", res)
	assert.True(t, etf.Equal(etf.OKTuple(5), h.ask(etf.Tuple{etf.Atom("eval"), 1}, etf.Tuple{etf.Binary("2 + 3"), etf.Map{}})))
}

func TestServerSlotRequests(t *testing.T) {
	h := newHarness(t, 0)
	require.Equal(t, etf.OK, h.ask(etf.Tuple{etf.Atom("create_context"), 1, etf.Atom("auto")}))
	slot := filepath.Join(t.TempDir(), "slot")
	write := func(payload etf.Term) int {
		b, err := etf.Encode(payload)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(slot, b, 0o600))
		return len(b)
	}
	slotOf := func(n int) etf.Tuple { return etf.Tuple{etf.Atom("slot"), etf.Binary(slot), n} }

	// A large argument in, a small result out: the result comes inline.
	blob := bytes.Repeat([]byte{7}, 200<<10)
	n := write(etf.Tuple{etf.Binary("builtins"), etf.Binary("len"), etf.List{etf.Tuple{etf.Atom("bytes"), etf.Binary(blob)}}, etf.Map{}})
	assert.True(t, etf.Equal(etf.OKTuple(200<<10), h.ask(etf.Tuple{etf.Atom("call"), 1, slotOf(n)})))

	// A large result goes back through the slot.
	n = write(etf.Tuple{etf.Binary("x * 3"), etf.MapOf(etf.Atom("x"), etf.Tuple{etf.Atom("bytes"), etf.Binary(blob)})})
	res := h.ask(etf.Tuple{etf.Atom("eval"), 1, slotOf(n)})
	require.Equal(t, etf.Atom("in_slot"), res.(etf.Tuple)[0])
	size := res.(etf.Tuple)[1].(int64)
	data, err := os.ReadFile(slot)
	require.NoError(t, err)
	got, err := etf.Decode(data[:size])
	require.NoError(t, err)
	assert.True(t, etf.Equal(etf.OKTuple(etf.Binary(bytes.Repeat(blob, 3))), got))

	// Bad slots: a clear error, and the context still serves.
	tag, _ := etf.Tag(h.ask(etf.Tuple{etf.Atom("eval"), 1, etf.Tuple{etf.Atom("slot"), etf.Binary("relative"), 10}}))
	assert.Equal(t, etf.ErrorAtom, tag)
	res = h.ask(etf.Tuple{etf.Atom("eval"), 1, etf.Tuple{etf.Atom("slot"), etf.Binary(slot + ".gone"), 10}})
	assert.Equal(t, etf.Atom("slot"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v", res)
	res = h.ask(etf.Tuple{etf.Atom("eval"), 1, slotOf(len(data) + 1)}) // longer than the file
	assert.Equal(t, etf.Atom("slot"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v", res)
	assert.True(t, etf.Equal(etf.OKTuple(2), h.ask(etf.Tuple{etf.Atom("eval"), 1}, etf.Tuple{etf.Binary("1 + 1"), etf.Map{}})))
}

func TestServerAnswersTheIDOfABrokenHeader(t *testing.T) {
	h := newHarness(t, 0)
	id := h.ref()
	head, err := etf.Encode(etf.Tuple{etf.Atom("exec"), id, 1})
	require.NoError(t, err)
	// {exec, Id, <a list claiming 4G elements>}: the id is read, the rest is not
	pkt := append([]byte{131, 104, 3}, head[3:len(head)-2]...)
	h.raw(append(pkt, 108, 255, 255, 255, 255, 106))
	gotID, res := h.reply()
	assert.Equal(t, id, gotID)
	assert.Equal(t, etf.Atom("bad_request"), res.(etf.Tuple)[1].(etf.Tuple)[0], "%v", res)
	// an id that is no reply address gets nothing: the next reply is info's
	h.send(etf.Tuple{etf.Atom("frobnicate"), 42})
	h.send(etf.Tuple{etf.Atom("exec"), etf.Atom("x"), 1}, etf.Tuple{etf.Binary("1")})
	tag, _ := etf.Tag(h.ask(etf.Tuple{etf.Atom("info")}))
	assert.Equal(t, etf.OK, tag)
}

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

// The adapter adds no allocation to a request: what bridge's
// BenchmarkHandleRequest measures with a fake pool is what a request costs.
func TestSubmitThroughTheAdapterAllocatesNothing(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	out, err := port.NewOutput(devnull)
	require.NoError(t, err)
	sp := sidecarPool{startTestPool(t), out}
	ctx, err := sp.NewContext(proto.Auto, 90)
	require.NoError(t, err)
	defer ctx.Close()
	id, err := etf.Encode(etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{9}})
	require.NoError(t, err)
	payload, err := etf.Encode(etf.Tuple{etf.Binary("pass")})
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(500, func() {
		if err := ctx.Submit(proto.Exec, 0, id, nil, payload); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
