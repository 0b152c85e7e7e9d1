package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
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
	b, ok := Get([]byte(key), []byte{131})
	if !ok {
		return nil, false
	}
	term, err := etf.Decode(b)
	require.NoError(t, err)
	return term, true
}

func TestStatePutGetDelete(t *testing.T) {
	value := etf.MapOf(etf.Atom("a"), etf.List{1, 2.5, etf.Binary("x")})
	require.NoError(t, Put([]byte("go:map"), enc(t, value)))
	got, ok := stateGet(t, "go:map")
	require.True(t, ok)
	assert.True(t, etf.Equal(value, got))

	// StateGet appends to dst and leaves it alone for a missing key.
	b, ok := Get([]byte("go:map"), []byte("prefix"))
	assert.True(t, ok)
	assert.True(t, bytes.HasPrefix(b, []byte("prefix")))
	b, ok = Get([]byte("go:none"), []byte("prefix"))
	assert.False(t, ok)
	assert.Equal(t, []byte("prefix"), b)

	// overwrite, then delete
	require.NoError(t, Put([]byte("go:map"), enc(t, etf.Binary("new"))))
	got, _ = stateGet(t, "go:map")
	assert.True(t, etf.Equal(etf.Binary("new"), got))
	assert.True(t, Delete([]byte("go:map")))
	assert.False(t, Delete([]byte("go:map")))
	_, ok = stateGet(t, "go:map")
	assert.False(t, ok)

	// an empty key and a large value
	big := bytes.Repeat([]byte{7}, 1<<20)
	require.NoError(t, Put(nil, enc(t, etf.Binary(big))))
	got, ok = stateGet(t, "")
	require.True(t, ok)
	assert.Equal(t, etf.Binary(big), got)
	assert.True(t, Delete(nil))
}

func TestIncr(t *testing.T) {
	n, err := Incr([]byte("go:counter"), 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "a missing key counts as 0")
	n, err = Incr([]byte("go:counter"), -7)
	require.NoError(t, err)
	assert.Equal(t, int64(-2), n)
	got, _ := stateGet(t, "go:counter")
	assert.Equal(t, int64(-2), got)

	// integers stored as terms, in every encoding that fits 64 bits
	for _, v := range []int64{0, 255, 256, -1, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MaxInt64 - 1, math.MinInt64 + 1} {
		require.NoError(t, Put([]byte("go:int"), enc(t, v)))
		n, err = Incr([]byte("go:int"), 1)
		require.NoError(t, err)
		assert.Equal(t, v+1, n)
		got, _ = stateGet(t, "go:int")
		assert.Equal(t, v+1, got)
	}
	// a LARGE_BIG_EXT of few digits is an integer too
	require.NoError(t, Put([]byte("go:int"), []byte{111, 0, 0, 0, 1, 1, 9}))
	n, err = Incr([]byte("go:int"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(-8), n)

	// overflow leaves the value alone
	require.NoError(t, Put([]byte("go:int"), enc(t, int64(math.MaxInt64))))
	_, err = Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrOverflow)
	got, _ = stateGet(t, "go:int")
	assert.Equal(t, int64(math.MaxInt64), got)
	huge := new(big.Int).Lsh(big.NewInt(1), 70)
	require.NoError(t, Put([]byte("go:int"), enc(t, huge)))
	_, err = Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrOverflow)
	got, _ = stateGet(t, "go:int")
	assert.Equal(t, 0, huge.Cmp(got.(*big.Int)))

	// not an integer
	require.NoError(t, Put([]byte("go:int"), enc(t, etf.Binary("7"))))
	_, err = Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrNotInteger)
	require.NoError(t, Put([]byte("go:int"), enc(t, 1.5)))
	_, err = Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrNotInteger)
	Delete([]byte("go:int"))
	Delete([]byte("go:counter"))
}

func TestStateKeysAndClear(t *testing.T) {
	Clear()
	assert.Empty(t, Keys())
	want := []string{}
	for i := 0; i < 1000; i++ { // enough to grow the tables
		k := fmt.Sprintf("go:key%d", i)
		want = append(want, k)
		require.NoError(t, Put([]byte(k), enc(t, i)))
	}
	var got []string
	for _, k := range Keys() {
		got = append(got, string(k))
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)
	for i := 0; i < 1000; i += 2 {
		assert.True(t, Delete([]byte(fmt.Sprintf("go:key%d", i))))
	}
	assert.Len(t, Keys(), 500)
	v, ok := stateGet(t, "go:key999")
	assert.True(t, ok)
	assert.Equal(t, int64(999), v)
	Clear()
	assert.Empty(t, Keys())
	_, ok = stateGet(t, "go:key999")
	assert.False(t, ok)
}

// Goroutines incr one counter while others put, get and delete keys: no
// increment is lost (the race detector watches the Go side).
func TestStateConcurrent(t *testing.T) {
	const workers, each = 8, 2000
	Delete([]byte("go:shared"))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := Incr([]byte("go:shared"), 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func(w int) {
			defer wg.Done()
			val := enc(t, etf.Binary(bytes.Repeat([]byte{byte(w)}, 100)))
			for i := 0; i < each; i++ {
				k := []byte(fmt.Sprintf("go:w%d:%d", w, i%50))
				if err := Put(k, val); err != nil {
					t.Error(err)
					return
				}
				if b, ok := Get(k, nil); ok && !bytes.Equal(b, val) {
					t.Errorf("key %s: a value of another worker", k)
				}
				Delete(k)
				_ = Keys()
			}
		}(w)
	}
	wg.Wait()
	got, _ := stateGet(t, "go:shared")
	assert.Equal(t, int64(workers*each), got)
	Delete([]byte("go:shared"))
}

// mirrorReader reads the frames of an Output with the state mirror on
// and applies the '$state' packets to a map, as the BEAM's table would.
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
	Mirror(out, true)
	t.Cleanup(func() { Mirror(out, false); r.Close() })
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
	keys := Keys()
	assert.Len(m.t, m.table, len(keys))
	for _, k := range keys {
		got, ok := stateGet(m.t, string(k))
		require.True(m.t, ok)
		assert.True(m.t, etf.Equal(got, m.table[string(k)]), "key %s: store %v, mirror %v", k, got, m.table[string(k)])
	}
}

// Many goroutines incr, set and delete the same keys, one clears now and
// then: once a frame written after them is read, the mirror equals the
// store, key by key (the ops of a key are in mutation order, a clear
// falls between the same mutations in both).
func TestStateMirrorOrder(t *testing.T) {
	Clear()
	m := newMirrorReader(t)
	const workers, each = 8, 3000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				k := []byte(fmt.Sprintf("mirror:k%d", i%7))
				switch {
				case w == 0 && i%500 == 0:
					Clear()
				case w == 1 && i%3 == 0:
					Delete(k)
				case w == 2 && i%5 == 0:
					_ = Put(k, enc(t, int64(1)<<40+int64(i)))
				case w == 3 && i%11 == 0:
					_ = Put(k, enc(t, etf.Binary("text"))) // incr fails on it until the next set
				default:
					_, _ = Incr(k, int64(w*1000-3000))
				}
			}
		}(w)
	}
	wg.Wait()
	m.mark("done")
	assert.Positive(t, m.ops) // fewer than the mutations: a key's consecutive ops coalesce
	m.assertMatches()
	// and a clear at the end
	Clear()
	m.mark("cleared")
	assert.Empty(t, m.table)
}

// With nothing else written, the mirror still goes out (the timed flush),
// and past 64 KiB without waiting for it.
func TestStateMirrorFlushesAlone(t *testing.T) {
	Clear()
	m := newMirrorReader(t)
	_, err := Incr([]byte("mirror:alone"), 7)
	require.NoError(t, err)
	id, _ := m.next() // no other frame is written: the timer sent it
	assert.Nil(t, id)
	assert.Equal(t, int64(7), m.table["mirror:alone"])
	require.NoError(t, Put([]byte("mirror:large"), enc(t, etf.Binary(bytes.Repeat([]byte{1}, 100<<10)))))
	id, _ = m.next()
	assert.Nil(t, id)
	assert.Len(t, m.table["mirror:large"], 100<<10)
}

// StateLoad replaces the store at once and mirrors nothing.
func TestLoad(t *testing.T) {
	Clear()
	m := newMirrorReader(t)
	require.NoError(t, Put([]byte("load:old"), enc(t, 1)))
	m.mark("before")
	before := m.ops
	entries := []Entry{
		{Key: []byte("load:int"), Value: enc(t, int64(-300))},
		{Key: []byte("load:big"), Value: enc(t, int64(math.MaxInt64))},
		{Key: []byte("load:map"), Value: enc(t, etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")}))},
		{Key: []byte("load:twice"), Value: enc(t, etf.Atom("first"))},
		{Key: []byte("load:twice"), Value: enc(t, etf.Atom("last"))},
		{Key: nil, Value: enc(t, etf.Binary("empty key"))},
	}
	for i := 0; i < 500; i++ { // enough to grow the tables
		entries = append(entries, Entry{Key: []byte(fmt.Sprintf("load:n%d", i)), Value: enc(t, i)})
	}
	require.NoError(t, Load(entries))
	m.mark("after")
	assert.Equal(t, before, m.ops, "state_load mirrors nothing")
	_, ok := stateGet(t, "load:old")
	assert.False(t, ok, "the store is replaced")
	assert.Len(t, Keys(), 5+500)
	got, _ := stateGet(t, "load:twice")
	assert.Equal(t, etf.Atom("last"), got)
	got, _ = stateGet(t, "load:map")
	assert.True(t, etf.Equal(etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")}), got))
	got, _ = stateGet(t, "")
	assert.Equal(t, etf.Binary("empty key"), got)
	// integers are integers again: incr works on them, and is mirrored
	n, err := Incr([]byte("load:int"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(-299), n)
	_, err = Incr([]byte("load:big"), 1)
	assert.ErrorIs(t, err, ErrOverflow)
	n, err = Incr([]byte("load:n499"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(500), n)
	m.mark("incr")
	assert.Equal(t, before+2, m.ops)
	// an empty load empties the store
	require.NoError(t, Load(nil))
	assert.Empty(t, Keys())
}
