package pool

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
	b, ok := StateGet([]byte(key), []byte{131})
	if !ok {
		return nil, false
	}
	term, err := etf.Decode(b)
	require.NoError(t, err)
	return term, true
}

func TestStatePutGetDelete(t *testing.T) {
	value := etf.MapOf(etf.Atom("a"), etf.List{1, 2.5, etf.Binary("x")})
	require.NoError(t, StatePut([]byte("go:map"), enc(t, value)))
	got, ok := stateGet(t, "go:map")
	require.True(t, ok)
	assert.True(t, etf.Equal(value, got))

	// StateGet appends to dst and leaves it alone for a missing key.
	b, ok := StateGet([]byte("go:map"), []byte("prefix"))
	assert.True(t, ok)
	assert.True(t, bytes.HasPrefix(b, []byte("prefix")))
	b, ok = StateGet([]byte("go:none"), []byte("prefix"))
	assert.False(t, ok)
	assert.Equal(t, []byte("prefix"), b)

	// overwrite, then delete
	require.NoError(t, StatePut([]byte("go:map"), enc(t, etf.Binary("new"))))
	got, _ = stateGet(t, "go:map")
	assert.True(t, etf.Equal(etf.Binary("new"), got))
	assert.True(t, StateDelete([]byte("go:map")))
	assert.False(t, StateDelete([]byte("go:map")))
	_, ok = stateGet(t, "go:map")
	assert.False(t, ok)

	// an empty key and a large value
	big := bytes.Repeat([]byte{7}, 1<<20)
	require.NoError(t, StatePut(nil, enc(t, etf.Binary(big))))
	got, ok = stateGet(t, "")
	require.True(t, ok)
	assert.Equal(t, etf.Binary(big), got)
	assert.True(t, StateDelete(nil))
}

func TestStateIncr(t *testing.T) {
	n, err := StateIncr([]byte("go:counter"), 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "a missing key counts as 0")
	n, err = StateIncr([]byte("go:counter"), -7)
	require.NoError(t, err)
	assert.Equal(t, int64(-2), n)
	got, _ := stateGet(t, "go:counter")
	assert.Equal(t, int64(-2), got)

	// integers stored as terms, in every encoding that fits 64 bits
	for _, v := range []int64{0, 255, 256, -1, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MaxInt64 - 1, math.MinInt64 + 1} {
		require.NoError(t, StatePut([]byte("go:int"), enc(t, v)))
		n, err = StateIncr([]byte("go:int"), 1)
		require.NoError(t, err)
		assert.Equal(t, v+1, n)
		got, _ = stateGet(t, "go:int")
		assert.Equal(t, v+1, got)
	}
	// a LARGE_BIG_EXT of few digits is an integer too
	require.NoError(t, StatePut([]byte("go:int"), []byte{111, 0, 0, 0, 1, 1, 9}))
	n, err = StateIncr([]byte("go:int"), 1)
	require.NoError(t, err)
	assert.Equal(t, int64(-8), n)

	// overflow leaves the value alone
	require.NoError(t, StatePut([]byte("go:int"), enc(t, int64(math.MaxInt64))))
	_, err = StateIncr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrStateOverflow)
	got, _ = stateGet(t, "go:int")
	assert.Equal(t, int64(math.MaxInt64), got)
	huge := new(big.Int).Lsh(big.NewInt(1), 70)
	require.NoError(t, StatePut([]byte("go:int"), enc(t, huge)))
	_, err = StateIncr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrStateOverflow)
	got, _ = stateGet(t, "go:int")
	assert.Equal(t, 0, huge.Cmp(got.(*big.Int)))

	// not an integer
	require.NoError(t, StatePut([]byte("go:int"), enc(t, etf.Binary("7"))))
	_, err = StateIncr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrStateNotInteger)
	require.NoError(t, StatePut([]byte("go:int"), enc(t, 1.5)))
	_, err = StateIncr([]byte("go:int"), 1)
	assert.ErrorIs(t, err, ErrStateNotInteger)
	StateDelete([]byte("go:int"))
	StateDelete([]byte("go:counter"))
}

func TestStateKeysAndClear(t *testing.T) {
	StateClear()
	assert.Empty(t, StateKeys())
	want := []string{}
	for i := 0; i < 1000; i++ { // enough to grow the tables
		k := fmt.Sprintf("go:key%d", i)
		want = append(want, k)
		require.NoError(t, StatePut([]byte(k), enc(t, i)))
	}
	var got []string
	for _, k := range StateKeys() {
		got = append(got, string(k))
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)
	for i := 0; i < 1000; i += 2 {
		assert.True(t, StateDelete([]byte(fmt.Sprintf("go:key%d", i))))
	}
	assert.Len(t, StateKeys(), 500)
	v, ok := stateGet(t, "go:key999")
	assert.True(t, ok)
	assert.Equal(t, int64(999), v)
	StateClear()
	assert.Empty(t, StateKeys())
	_, ok = stateGet(t, "go:key999")
	assert.False(t, ok)
}

// Goroutines incr one counter while others put, get and delete keys: no
// increment is lost (the race detector watches the Go side).
func TestStateConcurrent(t *testing.T) {
	const workers, each = 8, 2000
	StateDelete([]byte("go:shared"))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := StateIncr([]byte("go:shared"), 1); err != nil {
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
				if err := StatePut(k, val); err != nil {
					t.Error(err)
					return
				}
				if b, ok := StateGet(k, nil); ok && !bytes.Equal(b, val) {
					t.Errorf("key %s: a value of another worker", k)
				}
				StateDelete(k)
				_ = StateKeys()
			}
		}(w)
	}
	wg.Wait()
	got, _ := stateGet(t, "go:shared")
	assert.Equal(t, int64(workers*each), got)
	StateDelete([]byte("go:shared"))
}

// Python (erlang.state_*) and Go meet in the same store.
func TestStateFromPython(t *testing.T) {
	c := newCtx(t, Auto)
	require.NoError(t, StatePut([]byte("go:py"), enc(t, etf.Tuple{etf.Atom("ok"), etf.Binary("hi")})))
	assert.True(t, etf.Equal(etf.OKTuple(etf.Tuple{etf.Binary("ok"), etf.Binary("hi")}),
		eval(t, c, "__import__('erlang').state_get('go:py')")))
	run(t, c, Exec, etf.Tuple{etf.Binary("import erlang\nerlang.state_set('go:py', {'a': [1, None]})\n" +
		"for _ in range(100): erlang.state_incr('go:pyc')\nerlang.state_decr(b'go:pyc', 10)")})
	got, ok := stateGet(t, "go:py")
	require.True(t, ok)
	assert.True(t, etf.Equal(etf.MapOf(etf.Binary("a"), etf.List{1, etf.Atom("none")}), got))
	n, err := StateIncr([]byte("go:pyc"), 0)
	require.NoError(t, err)
	assert.Equal(t, int64(90), n)
	assert.True(t, etf.Equal(etf.Exception("KeyError", "'go:nope'"), eval(t, c, "__import__('erlang').state_get('go:nope')")))
	StateDelete([]byte("go:py"))
	StateDelete([]byte("go:pyc"))
}
