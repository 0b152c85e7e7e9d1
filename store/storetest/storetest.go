// Package storetest helps tests of the shared state: encodings, reads of
// the store, and a reader of an Output's frames that applies the mirror's
// '$state' packets to a map, as the BEAM's table would. Tests only.
package storetest

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/store"
)

// Enc is term's encoding without the version byte, as the store keeps it.
func Enc(t *testing.T, term etf.Term) []byte {
	t.Helper()
	b, err := etf.AppendTerm(nil, term)
	require.NoError(t, err)
	return b
}

// Get decodes the value under key; false when there is none.
func Get(t *testing.T, key string) (etf.Term, bool) {
	t.Helper()
	b, ok := store.Get([]byte(key), []byte{131})
	if !ok {
		return nil, false
	}
	term, err := etf.Decode(b)
	require.NoError(t, err)
	return term, true
}

// Mirror reads the frames of an Output whose state mirror is on and keeps
// the mirror's table.
type Mirror struct {
	t      *testing.T
	Out    *port.Output // the writer; frames written to it are read here
	Table  map[string]etf.Term
	Ops    int // ops applied so far
	frames chan []byte
}

// NewMirror makes an Output on a pipe, turns the mirror on for it, and
// reads it until the test ends.
func NewMirror(t *testing.T) *Mirror {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	out, err := port.NewOutput(w)
	require.NoError(t, err)
	m := &Mirror{t: t, Out: out, frames: make(chan []byte, 1024), Table: map[string]etf.Term{}}
	go func() {
		defer close(m.frames)
		br := bufio.NewReader(r)
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(br, f); err != nil {
				return
			}
			m.frames <- f
		}
	}()
	store.Mirror(out, true)
	t.Cleanup(func() { store.Mirror(out, false); r.Close() })
	return m
}

// Next reads one frame: a '$state' packet is applied to the table and
// gives nil, nil; any other frame gives its id and result.
func (m *Mirror) Next() (etf.Term, etf.Term) {
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
		m.Ops++
		m.apply(op)
	}
	return nil, nil
}

func (m *Mirror) apply(op etf.Term) {
	switch o := op.(type) {
	case etf.Atom:
		require.Equal(m.t, etf.Atom("clear"), o)
		clear(m.Table)
	case etf.Tuple:
		key := string(o[1].(etf.Binary))
		switch {
		case o[0] == etf.Atom("set") && len(o) == 3:
			m.Table[key] = o[2]
		case o[0] == etf.Atom("delete") && len(o) == 2:
			delete(m.Table, key)
		default:
			m.t.Fatalf("a bad op %v", o)
		}
	default:
		m.t.Fatalf("a bad op %v", op)
	}
}

// Until reads frames until the one with id, and returns its result; any
// other frame first is a failure (out of order).
func (m *Mirror) Until(id etf.Term) etf.Term {
	m.t.Helper()
	for {
		got, res := m.Next()
		if got == nil {
			continue
		}
		require.Equal(m.t, id, got, "a frame out of order")
		return res
	}
}

// Mark writes a frame with id from Go and reads up to it: every mutation
// made before it is mirrored before it.
func (m *Mirror) Mark(id etf.Atom) {
	b, _ := etf.Encode(id)
	m.Out.Send(b, []byte{131, 106})
	m.Until(id)
}

// AssertMatches: the mirror holds exactly what the store holds.
func (m *Mirror) AssertMatches() {
	m.t.Helper()
	keys := store.Keys()
	assert.Len(m.t, m.Table, len(keys))
	for _, k := range keys {
		got, ok := Get(m.t, string(k))
		require.True(m.t, ok)
		assert.True(m.t, etf.Equal(got, m.Table[string(k)]), "key %s: store %v, mirror %v", k, got, m.Table[string(k)])
	}
}
