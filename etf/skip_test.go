package etf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSkipSpansWhatDecodeTermReads(t *testing.T) {
	for name, v := range goldenExpected() {
		b, err := Encode(v)
		require.NoError(t, err, name)
		n, err := Skip(append(b[1:], 97, 1)) // a term after it is not part of it
		require.NoError(t, err, name)
		assert.Equal(t, len(b)-1, n, name)
	}
	for name, in := range map[string][]byte{
		"string tail": {108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2},
		"empty tail":  {108, 0, 0, 0, 0, 108, 0, 0, 0, 1, 97, 1, 106},
		"small big":   {113, 119, 1, 'm', 119, 1, 'f', 110, 1, 0, 3},
		"old float":   append([]byte{99}, append([]byte("1.5e+00"), make([]byte, 24)...)...),
		"latin1 atom": {100, 0, 2, 0xe9, 't'},
		"old ref":     {101, 100, 0, 1, 'n', 0, 0, 0, 1, 0},
	} {
		_, dn, err := (&Decoder{}).DecodeTerm(in)
		require.NoError(t, err, name)
		n, err := Skip(in)
		require.NoError(t, err, name)
		assert.Equal(t, dn, n, name)
	}
}

func TestSkipRefusesWhatDecodeTermRefuses(t *testing.T) {
	cases := map[string][]byte{
		"empty":              {},
		"unknown tag":        {200},
		"huge binary":        {109, 255, 255, 255, 255},
		"huge list":          {108, 255, 255, 255, 255, 106},
		"huge tuple":         {105, 255, 255, 255, 255},
		"huge map":           {116, 0x7f, 255, 255, 255, 97, 1},
		"huge big":           {111, 255, 255, 255, 255, 0},
		"huge string":        {107, 255, 255, 1},
		"truncated int":      {98, 0, 0},
		"truncated float":    {70, 0, 0, 0},
		"nan":                {70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0},
		"bad atom utf8":      {119, 1, 0xff},
		"big sign":           {110, 1, 2, 1},
		"pid without atom":   {88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1},
		"ref of 6 words":     {90, 0, 6},
		"nil-tailed nothing": {108, 0, 0, 0, 0, 97, 1},
		"improper tail only": {108, 0, 0, 0, 0, 108, 0, 0, 0, 1, 97, 1, 97, 2},
		"bitstring 0 bits":   {77, 0, 0, 0, 1, 0, 1},
		"fun size too big":   {112, 255, 255, 255, 255},
		"nested compressed":  {104, 1, 80},
		"compressed":         {80, 0, 0, 0, 1},
		"atom cache":         {82, 0},
		"local":              {121, 0},
		"export arity":       {113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 1, 0},
		"export module":      {113, 97, 1, 119, 1, 'f', 97, 1},
	}
	for name, in := range cases {
		_, _, derr := (&Decoder{}).DecodeTerm(in)
		require.Error(t, derr, name)
		_, err := Skip(in)
		assert.Error(t, err, name)
	}
}

func TestSkipDepthAndDuplicateKeys(t *testing.T) {
	deep := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, 108, 0, 0, 0, 1)
		}
		b = append(b, 106)
		for range n {
			b = append(b, 106)
		}
		return b
	}
	n, err := Skip(deep(DefaultMaxDepth))
	require.NoError(t, err)
	assert.Equal(t, len(deep(DefaultMaxDepth)), n)
	_, err = Skip(deep(DefaultMaxDepth + 1))
	assert.ErrorContains(t, err, "nested deeper")
	_, err = (&Decoder{MaxDepth: 10}).Skip(deep(11))
	assert.Error(t, err)

	dup := []byte{116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 1, 97, 3} // #{1 => 2, 1 => 3}
	_, _, err = (&Decoder{}).DecodeTerm(dup)
	require.Error(t, err)
	n, err = Skip(dup)
	require.NoError(t, err, "Skip does not compare keys")
	assert.Equal(t, len(dup), n)
}

func TestSkipAllocatesNothing(t *testing.T) {
	ref := Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1, 2, 3}}
	b, err := Encode(Tuple{Atom("call"), Tuple{Atom("nested"), ref}, 7,
		Tuple{Atom("slot"), Binary("/dev/shm/x"), 1 << 20}, 12, 1.5, MapOf(Atom("k"), List{1, 2}),
		Pid{Node: "n@h", ID: 1}, Export{Module: "m", Function: "f", Arity: 2}})
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Skip(b[1:]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestTupleAndListHeaders(t *testing.T) {
	b, err := Encode(Tuple{Atom("a"), 1})
	require.NoError(t, err)
	arity, n, err := TupleHeader(b[1:])
	require.NoError(t, err)
	assert.Equal(t, 2, arity)
	assert.Equal(t, 2, n)
	assert.Equal(t, []byte{TagSmallTuple, 2}, AppendTupleHeader(nil, 2))

	large := make(Tuple, 300)
	for i := range large {
		large[i] = 0
	}
	b, err = Encode(large)
	require.NoError(t, err)
	arity, n, err = TupleHeader(b[1:])
	require.NoError(t, err)
	assert.Equal(t, 300, arity)
	assert.Equal(t, 5, n)
	assert.Equal(t, b[1:6], AppendTupleHeader(nil, 300))

	for _, bad := range [][]byte{{}, {TagSmallTuple}, {TagLargeTuple, 0, 0}, {TagList, 0, 0, 0, 0, TagNil}} {
		_, _, err := TupleHeader(bad)
		assert.Error(t, err, "%v", bad)
	}

	b, err = Encode(List{Atom("a"), Tuple{}})
	require.NoError(t, err)
	length, n, err := ListHeader(b[1:])
	require.NoError(t, err)
	assert.Equal(t, 2, length)
	assert.Equal(t, 5, n)
	length, _, err = ListHeader([]byte{TagList, 0, 0, 0, 9, TagNil})
	require.NoError(t, err, "the length is the caller's to check")
	assert.Equal(t, 9, length)
	for _, bad := range [][]byte{{}, {TagNil}, {TagString, 0, 1, 7}, {TagList, 0, 0, 0}} {
		_, _, err := ListHeader(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func TestRawTermIsWrittenVerbatim(t *testing.T) {
	v := MapOf(Atom("a"), List{1, Binary("x")})
	enc, err := Encode(v)
	require.NoError(t, err)
	want, err := Encode(Tuple{OK, v})
	require.NoError(t, err)
	got, err := Encode(Tuple{OK, RawTerm(enc[1:])})
	require.NoError(t, err)
	assert.Equal(t, want, got)
	_, err = Encode(RawTerm(nil))
	assert.Error(t, err)
}
