package pool

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/store"
)

// enc is t's encoding without the version byte.
func enc(t *testing.T, term etf.Term) []byte {
	t.Helper()
	b, err := etf.AppendTerm(nil, term)
	require.NoError(t, err)
	return b
}

func stateGet(t *testing.T, key string) (etf.Term, bool) {
	t.Helper()
	b, ok := store.Get([]byte(key), []byte{131})
	if !ok {
		return nil, false
	}
	term, err := etf.Decode(b)
	require.NoError(t, err)
	return term, true
}

// Python (erlang.state_*) and Go meet in the same store.
func TestStateFromPython(t *testing.T) {
	c := newCtx(t, Auto)
	require.NoError(t, store.Put([]byte("go:py"), enc(t, etf.Tuple{etf.Atom("ok"), etf.Binary("hi")})))
	assert.True(t, etf.Equal(etf.OKTuple(etf.Tuple{etf.Binary("ok"), etf.Binary("hi")}),
		eval(t, c, "__import__('erlang').state_get('go:py')")))
	run(t, c, Exec, etf.Tuple{etf.Binary("import erlang\nerlang.state_set('go:py', {'a': [1, None]})\n" +
		"for _ in range(100): erlang.state_incr('go:pyc')\nerlang.state_decr(b'go:pyc', 10)")})
	got, ok := stateGet(t, "go:py")
	require.True(t, ok)
	assert.True(t, etf.Equal(etf.MapOf(etf.Binary("a"), etf.List{1, etf.Atom("none")}), got))
	n, err := store.Incr([]byte("go:pyc"), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(90), n)
	assert.True(t, etf.Equal(etf.Exception("KeyError", "'go:nope'"), eval(t, c, "__import__('erlang').state_get('go:nope')")))
	store.Delete([]byte("go:py"))
	store.Delete([]byte("go:pyc"))
}

// mirrorReader reads the frames of an Output with the state mirror on
// and applies the '$state' packets to a map, as the BEAM's table would
// (as store's tests do, here with Python's mutations).
type mirrorReader struct {
	t      *testing.T
	out    *port.Output
	frames chan []byte
	table  map[string]etf.Term
	ops    int
}

func newMirrorReader(t *testing.T) *mirrorReader {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	out, err := port.NewOutput(w)
	require.NoError(t, err)
	m := &mirrorReader{t: t, out: out, frames: make(chan []byte, 1024), table: map[string]etf.Term{}}
	go func() {
		br := bufio.NewReader(r)
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				close(m.frames)
				return
			}
			f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(br, f); err != nil {
				close(m.frames)
				return
			}
			m.frames <- f
		}
	}()
	store.Mirror(out, true)
	t.Cleanup(func() { store.Mirror(out, false); r.Close() })
	return m
}

// next reads one frame: a '$state' packet is applied to the table and
// returns nil; any other frame is returned as its id and result.
func (m *mirrorReader) next() (etf.Term, etf.Term) {
	m.t.Helper()
	var f []byte
	select {
	case f = <-m.frames:
	case <-time.After(20 * time.Second):
		m.t.Fatal("no frame in 20 s")
	}
	var d etf.Decoder
	id, n, err := d.DecodePrefix(f)
	require.NoError(m.t, err)
	res, err := (&etf.Decoder{CopyBinaries: true}).Decode(f[n:])
	require.NoError(m.t, err)
	if id != etf.Atom("$state") {
		return id, res
	}
	ops, ok := res.(etf.List)
	require.True(m.t, ok, "a '$state' packet of %v", res)
	for _, op := range ops {
		m.ops++
		switch o := op.(type) {
		case etf.Atom:
			require.Equal(m.t, etf.Atom("clear"), o)
			clear(m.table)
		case etf.Tuple:
			key := string(o[1].(etf.Binary))
			switch {
			case o[0] == etf.Atom("set") && len(o) == 3:
				m.table[key] = o[2]
			case o[0] == etf.Atom("delete") && len(o) == 2:
				delete(m.table, key)
			default:
				m.t.Fatalf("a bad op %v", o)
			}
		default:
			m.t.Fatalf("a bad op %v", op)
		}
	}
	return nil, nil
}

// until reads frames until the one with id, and returns its result.
func (m *mirrorReader) until(id etf.Term) etf.Term {
	m.t.Helper()
	for {
		got, res := m.next()
		if got == nil {
			continue
		}
		require.Equal(m.t, id, got, "a frame out of order")
		return res
	}
}

// mark writes a frame with id from Go: every mutation made before it is
// mirrored before it.
func (m *mirrorReader) mark(id etf.Atom) {
	b, _ := etf.Encode(id)
	m.out.Send(b, []byte{131, 106})
	m.until(id)
}

// assertMatches: the mirror holds exactly what the store holds.
func (m *mirrorReader) assertMatches() {
	m.t.Helper()
	keys := store.Keys()
	assert.Len(m.t, m.table, len(keys))
	for _, k := range keys {
		got, ok := stateGet(m.t, string(k))
		require.True(m.t, ok)
		assert.True(m.t, etf.Equal(got, m.table[string(k)]), "key %s: store %v, mirror %v", k, got, m.table[string(k)])
	}
}

// Python's mutations are mirrored before the reply of the request that
// made them, and before any frame written after them; values are the
// terms as stored (ints as integers, anything else as converted).
func TestStateMirrorBeforeReply(t *testing.T) {
	store.Clear()
	m := newMirrorReader(t)
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
		require.NoError(t, c.Submit(m.out, Exec, 0, idBytes, payload))
		assert.Equal(t, etf.OK, m.until(id))
		// all of it is in the mirror already: nothing read after the reply
		assert.Equal(t, int64(1000*round), m.table["mirror:py"])
		assert.Equal(t, int64(math.MinInt64), m.table["mirror:neg"])
		assert.Equal(t, 0, new(big.Int).Lsh(big.NewInt(1), 64).Cmp(m.table["mirror:big"].(*big.Int)))
		assert.True(t, etf.Equal(etf.MapOf(etf.Binary("a"), etf.Tuple{1, etf.Atom("none")}), m.table["mirror:map"]))
		assert.NotContains(t, m.table, "mirror:gone")
		m.assertMatches()
	}
	// Erlang's incr: its reply (written by Go after it) comes after its op
	n, err := store.Incr([]byte("mirror:py"), -5)
	require.NoError(t, err)
	m.mark("after_incr")
	assert.Equal(t, n, m.table["mirror:py"])
}
