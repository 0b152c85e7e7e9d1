package store_test

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/store"
	"github.com/erlang-python/erlang_python/store/storetest"
)

func TestStatePutGetDelete(t *testing.T) {
	value := etf.MapOf(etf.Atom("a"), etf.List{1, 2.5, etf.Binary("x")})
	require.NoError(t, store.Put([]byte("go:map"), storetest.Enc(t, value)))
	got, ok := storetest.Get(t, "go:map")
	require.True(t, ok)
	assert.True(t, etf.Equal(value, got))

	// StateGet appends to dst and leaves it alone for a missing key.
	b, ok := store.Get([]byte("go:map"), []byte("prefix"))
	assert.True(t, ok)
	assert.True(t, bytes.HasPrefix(b, []byte("prefix")))
	b, ok = store.Get([]byte("go:none"), []byte("prefix"))
	assert.False(t, ok)
	assert.Equal(t, []byte("prefix"), b)

	// overwrite, then delete
	require.NoError(t, store.Put([]byte("go:map"), storetest.Enc(t, etf.Binary("new"))))
	got, _ = storetest.Get(t, "go:map")
	assert.True(t, etf.Equal(etf.Binary("new"), got))
	assert.True(t, store.Delete([]byte("go:map")))
	assert.False(t, store.Delete([]byte("go:map")))
	_, ok = storetest.Get(t, "go:map")
	assert.False(t, ok)

	// an empty key and a large value
	big := bytes.Repeat([]byte{7}, 1<<20)
	require.NoError(t, store.Put(nil, storetest.Enc(t, etf.Binary(big))))
	got, ok = storetest.Get(t, "")
	require.True(t, ok)
	assert.Equal(t, etf.Binary(big), got)
	assert.True(t, store.Delete(nil))
}

func TestIncr(t *testing.T) {
	n, err := store.Incr([]byte("go:counter"), 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "a missing key counts as 0")
	n, err = store.Incr([]byte("go:counter"), -7)
	require.NoError(t, err)
	assert.Equal(t, int64(-2), n)
	got, _ := storetest.Get(t, "go:counter")
	assert.Equal(t, int64(-2), got)

	// integers stored as terms, in every encoding that fits 64 bits
	for _, v := range []int64{0, 255, 256, -1, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MaxInt64 - 1, math.MinInt64 + 1} {
		require.NoError(t, store.Put([]byte("go:int"), storetest.Enc(t, v)))
		n, err = store.Incr([]byte("go:int"), 1)
		require.NoError(t, err)
		assert.Equal(t, v+1, n)
		got, _ = storetest.Get(t, "go:int")
		assert.Equal(t, v+1, got)
	}
	// a LARGE_BIG_EXT of few digits is an integer too
	require.NoError(t, store.Put([]byte("go:int"), []byte{111, 0, 0, 0, 1, 1, 9}))
	n, err = store.Incr([]byte("go:int"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(-8), n)

	// overflow leaves the value alone
	require.NoError(t, store.Put([]byte("go:int"), storetest.Enc(t, int64(math.MaxInt64))))
	_, err = store.Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, store.ErrOverflow)
	got, _ = storetest.Get(t, "go:int")
	assert.Equal(t, int64(math.MaxInt64), got)
	huge := new(big.Int).Lsh(big.NewInt(1), 70)
	require.NoError(t, store.Put([]byte("go:int"), storetest.Enc(t, huge)))
	_, err = store.Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, store.ErrOverflow)
	got, _ = storetest.Get(t, "go:int")
	assert.Equal(t, 0, huge.Cmp(got.(*big.Int)))

	// not an integer
	require.NoError(t, store.Put([]byte("go:int"), storetest.Enc(t, etf.Binary("7"))))
	_, err = store.Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, store.ErrNotInteger)
	require.NoError(t, store.Put([]byte("go:int"), storetest.Enc(t, 1.5)))
	_, err = store.Incr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, store.ErrNotInteger)
	store.Delete([]byte("go:int"))
	store.Delete([]byte("go:counter"))
}

func TestStateKeysAndClear(t *testing.T) {
	store.Clear()
	assert.Empty(t, store.Keys())
	want := []string{}
	for i := 0; i < 1000; i++ { // enough to grow the tables
		k := fmt.Sprintf("go:key%d", i)
		want = append(want, k)
		require.NoError(t, store.Put([]byte(k), storetest.Enc(t, i)))
	}
	var got []string
	for _, k := range store.Keys() {
		got = append(got, string(k))
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)
	for i := 0; i < 1000; i += 2 {
		assert.True(t, store.Delete([]byte(fmt.Sprintf("go:key%d", i))))
	}
	assert.Len(t, store.Keys(), 500)
	v, ok := storetest.Get(t, "go:key999")
	assert.True(t, ok)
	assert.Equal(t, int64(999), v)
	store.Clear()
	assert.Empty(t, store.Keys())
	_, ok = storetest.Get(t, "go:key999")
	assert.False(t, ok)
}

// Goroutines incr one counter while others put, get and delete keys: no
// increment is lost (the race detector watches the Go side).
func TestStateConcurrent(t *testing.T) {
	const workers, each = 8, 2000
	store.Delete([]byte("go:shared"))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := store.Incr([]byte("go:shared"), 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func(w int) {
			defer wg.Done()
			val := storetest.Enc(t, etf.Binary(bytes.Repeat([]byte{byte(w)}, 100)))
			for i := 0; i < each; i++ {
				k := []byte(fmt.Sprintf("go:w%d:%d", w, i%50))
				if err := store.Put(k, val); err != nil {
					t.Error(err)
					return
				}
				if b, ok := store.Get(k, nil); ok && !bytes.Equal(b, val) {
					t.Errorf("key %s: a value of another worker", k)
				}
				store.Delete(k)
				_ = store.Keys()
			}
		}(w)
	}
	wg.Wait()
	got, _ := storetest.Get(t, "go:shared")
	assert.Equal(t, int64(workers*each), got)
	store.Delete([]byte("go:shared"))
}

// Many goroutines incr, set and delete the same keys, one clears now and
// then: once a frame written after them is read, the mirror equals the
// store, key by key (the ops of a key are in mutation order, a clear
// falls between the same mutations in both).
func TestStateMirrorOrder(t *testing.T) {
	store.Clear()
	m := storetest.NewMirror(t)
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
					store.Clear()
				case w == 1 && i%3 == 0:
					store.Delete(k)
				case w == 2 && i%5 == 0:
					_ = store.Put(k, storetest.Enc(t, int64(1)<<40+int64(i)))
				case w == 3 && i%11 == 0:
					_ = store.Put(k, storetest.Enc(t, etf.Binary("text"))) // incr fails on it until the next set
				default:
					_, _ = store.Incr(k, int64(w*1000-3000))
				}
			}
		}(w)
	}
	wg.Wait()
	m.Mark("done")
	assert.Positive(t, m.Ops) // fewer than the mutations: a key's consecutive ops coalesce
	m.AssertMatches()
	// and a clear at the end
	store.Clear()
	m.Mark("cleared")
	assert.Empty(t, m.Table)
}

// With nothing else written, the mirror still goes out (the timed flush),
// and past 64 KiB without waiting for it.
func TestStateMirrorFlushesAlone(t *testing.T) {
	store.Clear()
	m := storetest.NewMirror(t)
	_, err := store.Incr([]byte("mirror:alone"), 7)
	require.NoError(t, err)
	id, _ := m.Next() // no other frame is written: the timer sent it
	assert.Nil(t, id)
	assert.Equal(t, int64(7), m.Table["mirror:alone"])
	require.NoError(t, store.Put([]byte("mirror:large"), storetest.Enc(t, etf.Binary(bytes.Repeat([]byte{1}, 100<<10)))))
	id, _ = m.Next()
	assert.Nil(t, id)
	assert.Len(t, m.Table["mirror:large"], 100<<10)
}

// StateLoad replaces the store at once and mirrors nothing.
func TestLoad(t *testing.T) {
	store.Clear()
	m := storetest.NewMirror(t)
	require.NoError(t, store.Put([]byte("load:old"), storetest.Enc(t, 1)))
	m.Mark("before")
	before := m.Ops
	entries := []store.Entry{
		{Key: []byte("load:int"), Value: storetest.Enc(t, int64(-300))},
		{Key: []byte("load:big"), Value: storetest.Enc(t, int64(math.MaxInt64))},
		{Key: []byte("load:map"), Value: storetest.Enc(t, etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")}))},
		{Key: []byte("load:twice"), Value: storetest.Enc(t, etf.Atom("first"))},
		{Key: []byte("load:twice"), Value: storetest.Enc(t, etf.Atom("last"))},
		{Key: nil, Value: storetest.Enc(t, etf.Binary("empty key"))},
	}
	for i := 0; i < 500; i++ { // enough to grow the tables
		entries = append(entries, store.Entry{Key: []byte(fmt.Sprintf("load:n%d", i)), Value: storetest.Enc(t, i)})
	}
	require.NoError(t, store.Load(entries))
	m.Mark("after")
	assert.Equal(t, before, m.Ops, "state_load mirrors nothing")
	_, ok := storetest.Get(t, "load:old")
	assert.False(t, ok, "the store is replaced")
	assert.Len(t, store.Keys(), 5+500)
	got, _ := storetest.Get(t, "load:twice")
	assert.Equal(t, etf.Atom("last"), got)
	got, _ = storetest.Get(t, "load:map")
	assert.True(t, etf.Equal(etf.MapOf(etf.Atom("a"), etf.List{1, etf.Binary("x")}), got))
	got, _ = storetest.Get(t, "")
	assert.Equal(t, etf.Binary("empty key"), got)
	// integers are integers again: incr works on them, and is mirrored
	n, err := store.Incr([]byte("load:int"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(-299), n)
	_, err = store.Incr([]byte("load:big"), 1)
	assert.ErrorIs(t, err, store.ErrOverflow)
	n, err = store.Incr([]byte("load:n499"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(500), n)
	m.Mark("incr")
	assert.Equal(t, before+2, m.Ops)
	// an empty load empties the store
	require.NoError(t, store.Load(nil))
	assert.Empty(t, store.Keys())
}
