package bridge

import (
	"bytes"
	"errors"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// Fakes of the seams, which record what the server asks of them.

type fakePool struct {
	mu      sync.Mutex
	made    []fakeMade
	ctxs    map[int64]*fakeContext
	cancels [][]byte
	newErr  error
	info    proto.Info
	exited  [][]byte // Exited's pids
}

type fakeMade struct {
	kind proto.ContextKind
	id   int64
}

func (p *fakePool) NewContext(kind proto.ContextKind, id int64) (Context, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.newErr != nil {
		return nil, p.newErr
	}
	p.made = append(p.made, fakeMade{kind, id})
	c := &fakeContext{}
	if p.ctxs == nil {
		p.ctxs = map[int64]*fakeContext{}
	}
	p.ctxs[id] = c
	return c, nil
}

func (p *fakePool) Cancel(id []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancels = append(p.cancels, bytes.Clone(id))
}

func (p *fakePool) Info() proto.Info { return p.info }

func (p *fakePool) Exited(pid []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exited = append(p.exited, bytes.Clone(pid))
}

// submission is one Submit, SubmitFile or CallbackReply.
type submission struct {
	op      proto.Op
	chain   int64
	id      []byte
	caller  []byte
	payload []byte
	path    string
	size    int
	cb      int64 // CallbackReply's
}

type fakeContext struct {
	mu      sync.Mutex
	subs    []submission
	err     error // what Submit and SubmitFile return
	closed  bool
	dropped [][]byte // DropEnv's pids
}

func (c *fakeContext) Submit(op proto.Op, chain int64, id, caller, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, submission{op: op, chain: chain, id: bytes.Clone(id), caller: bytes.Clone(caller), payload: payload})
	return c.err
}

func (c *fakeContext) SubmitFile(op proto.Op, chain int64, id, caller []byte, path string, size int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size <= 0 || !strings.HasPrefix(path, "/") { // as the pool checks
		return ErrBadSlot
	}
	c.subs = append(c.subs, submission{op: op, chain: chain, id: bytes.Clone(id), caller: bytes.Clone(caller), path: path, size: size})
	return c.err
}

func (c *fakeContext) CallbackReply(cb int64, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, submission{cb: cb, payload: payload})
	return c.err
}

func (c *fakeContext) DropEnv(pid []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped = append(c.dropped, bytes.Clone(pid))
	return c.err
}

func (c *fakeContext) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

func (c *fakeContext) submissions() []submission {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]submission(nil), c.subs...)
}

type fakeStore struct {
	m        map[string][]byte
	mirror   bool
	putErr   error
	loadErr  error
	incrErr  error
	loaded   []proto.StateEntry
	mirrorAt int // packets written when the mirror started
	w        *fakeWriter
}

func (s *fakeStore) Put(key, value []byte) error {
	if s.putErr != nil {
		return s.putErr
	}
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

func (s *fakeStore) Get(key, dst []byte) ([]byte, bool) {
	v, ok := s.m[string(key)]
	if !ok {
		return dst, false
	}
	return append(dst, v...), true
}

func (s *fakeStore) Delete(key []byte) bool {
	_, ok := s.m[string(key)]
	delete(s.m, string(key))
	return ok
}

func (s *fakeStore) Incr(key []byte, delta int64) (int64, error) {
	if s.incrErr != nil {
		return 0, s.incrErr
	}
	var n int64
	if v, ok := s.m[string(key)]; ok {
		t, _, err := (&etf.Decoder{}).DecodeTerm(v)
		if n, ok = etf.ToInt64(t); err != nil || !ok {
			return 0, ErrNotInteger
		}
	}
	n += delta
	s.m[string(key)], _ = etf.AppendTerm(nil, n)
	return n, nil
}

func (s *fakeStore) Clear() { clear(s.m) }

func (s *fakeStore) Load(entries []proto.StateEntry) error {
	if s.loadErr != nil {
		return s.loadErr
	}
	s.loaded = entries
	clear(s.m)
	for _, e := range entries {
		s.m[string(e.Key)] = bytes.Clone(e.Value)
	}
	return nil
}

func (s *fakeStore) Keys() [][]byte {
	keys := make([][]byte, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, []byte(k))
	}
	return keys
}

func (s *fakeStore) StartMirror() {
	s.mirror = true
	s.mirrorAt = s.w.count()
}

// fakeWriter keeps the packets sent, whole, and counts the acks.
type fakeWriter struct {
	mu       sync.Mutex
	packets  [][]byte
	sent     chan struct{}
	logAcks  int64
	sendAcks int64
}

func (w *fakeWriter) LogAck(n int64) {
	w.mu.Lock()
	w.logAcks += n
	w.mu.Unlock()
}

func (w *fakeWriter) SendAck(n int64) {
	w.mu.Lock()
	w.sendAcks += n
	w.mu.Unlock()
}

func (w *fakeWriter) Send(a, b []byte) {
	w.mu.Lock()
	w.packets = append(w.packets, append(bytes.Clone(a), b...))
	w.mu.Unlock()
	select {
	case w.sent <- struct{}{}:
	default:
	}
}

func (w *fakeWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.packets)
}

// syncBuffer is a logger's output that tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fixture is a Server over fakes.
type fixture struct {
	t     *testing.T
	srv   *Server
	pool  *fakePool
	store *fakeStore
	out   *fakeWriter
	logs  *syncBuffer
	seen  int // packets already taken by next
}

func newFixture(t *testing.T, in io.Reader, maxPacket int) *fixture {
	f := &fixture{t: t, pool: &fakePool{info: proto.Info{Mode: "subinterp", PythonVersion: "3.13.0", NumExecutors: 4,
		SubinterpSupported: true, SlotMin: 65536}}, out: &fakeWriter{sent: make(chan struct{}, 1)}, logs: &syncBuffer{}}
	f.store = &fakeStore{m: map[string][]byte{}, w: f.out}
	f.srv = NewServer(f.pool, f.store, in, f.out, maxPacket, log.New(f.logs, "", 0))
	return f
}

// withContext adds context n, as a create_context would.
func (f *fixture) withContext(n int64) *fakeContext {
	c := &fakeContext{}
	f.srv.contexts[n] = c
	return c
}

func encodeAll(t *testing.T, terms ...etf.Term) []byte {
	t.Helper()
	var b []byte
	for _, term := range terms {
		e, err := etf.Encode(term)
		require.NoError(t, err)
		b = append(b, e...)
	}
	return b
}

// handle hands one packet to the server, as Serve does.
func (f *fixture) handle(pkt []byte) { f.srv.handleSafely(pkt) }

// send hands the packet made of terms to the server.
func (f *fixture) send(terms ...etf.Term) { f.handle(encodeAll(f.t, terms...)) }

// packet is a packet the server wrote, decoded.
type packet struct {
	id, body etf.Term
	raw      []byte
}

// next returns the next packet written, waiting up to 5 s for it (a
// create_context answers from a goroutine).
func (f *fixture) next() packet {
	f.t.Helper()
	deadline := time.After(5 * time.Second)
	for f.out.count() <= f.seen {
		select {
		case <-f.out.sent:
		case <-deadline:
			f.t.Fatal("no packet in 5 s")
		case <-time.After(time.Millisecond):
		}
	}
	f.out.mu.Lock()
	raw := f.out.packets[f.seen]
	f.out.mu.Unlock()
	f.seen++
	id, n, err := (&etf.Decoder{}).DecodePrefix(raw)
	require.NoError(f.t, err)
	body, err := etf.Decode(raw[n:])
	require.NoError(f.t, err, "%x", raw)
	return packet{id, body, raw}
}

// none checks that nothing more was written.
func (f *fixture) none() {
	f.t.Helper()
	require.Equal(f.t, f.seen, f.out.count(), "unexpected packets")
}

var errBoom = errors.New("boom")
