package etf

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func negZero() float64 { return math.Copysign(0, -1) }

func roundTrip(t *testing.T, v Term) Term {
	t.Helper()
	b, err := Encode(v)
	require.NoError(t, err)
	got, err := Decode(b)
	require.NoError(t, err)
	return got
}

func TestRoundTripGoTypes(t *testing.T) {
	cases := []struct {
		in, want Term
	}{
		{42, int64(42)}, {int8(-3), int64(-3)}, {uint64(math.MaxUint64), new(big.Int).SetUint64(math.MaxUint64)},
		{int64(math.MinInt64), int64(math.MinInt64)}, {true, True}, {"text", Binary("text")},
		{[]byte{1, 2}, Binary{1, 2}}, {[]Term{1, "a"}, List{int64(1), Binary("a")}},
		{float32(1.5), 1.5}, {map[Atom]Term{"k": 1}, MapOf(Atom("k"), int64(1))},
		{map[string]Term{"k": 1}, MapOf(Binary("k"), int64(1))},
		{Ref{Node: "n@h", Len: 5, IDs: [5]uint32{1, 2, 3, 4, 5}}, Ref{Node: "n@h", Len: 5, IDs: [5]uint32{1, 2, 3, 4, 5}}},
		{Port{Node: "n@h", ID: 1 << 40, Creation: 7}, Port{Node: "n@h", ID: 1 << 40, Creation: 7}},
		{ImproperList{Elems: []Term{1}, Tail: List{}}, List{int64(1)}},
	}
	for _, c := range cases {
		assert.True(t, Equal(c.want, roundTrip(t, c.in)), "%#v", c.in)
	}
}

func TestEncodeRefusesWhatErlangCannotHold(t *testing.T) {
	bad := []Term{nil, math.NaN(), math.Inf(1), Atom(string(bytes.Repeat([]byte("a"), 256))),
		Atom("\xff"), struct{}{}, make(chan int), ImproperList{Tail: 1}, BitBinary{Bits: 3},
		Ref{Len: 0}, Fun{}, (*big.Int)(nil), Tuple{1, math.NaN()}}
	for _, v := range bad {
		_, err := Encode(v)
		var ue *UnsupportedError
		assert.True(t, errors.As(err, &ue), "%#v: %v", v, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string][]byte{
		"empty":              {},
		"version only":       {131},
		"bad version":        {130, 97, 1},
		"trailing bytes":     {131, 97, 1, 0},
		"unknown tag":        {131, 200},
		"huge binary":        {131, 109, 255, 255, 255, 255},
		"huge list":          {131, 108, 255, 255, 255, 255, 106},
		"huge tuple":         {131, 105, 255, 255, 255, 255},
		"huge map":           {131, 116, 0x7f, 255, 255, 255, 97, 1},
		"huge big":           {131, 111, 255, 255, 255, 255, 0},
		"huge string":        {131, 107, 255, 255, 1},
		"truncated int":      {131, 98, 0, 0},
		"truncated float":    {131, 70, 0, 0, 0},
		"bad atom utf8":      {131, 119, 1, 0xff},
		"big sign":           {131, 110, 1, 2, 1},
		"pid without atom":   {131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1},
		"ref of 6 words":     {131, 90, 0, 6},
		"nil-tailed nothing": {131, 108, 0, 0, 0, 0, 97, 1},
		"bitstring 0 bits":   {131, 77, 0, 0, 0, 1, 0, 1},
		"fun size too big":   {131, 112, 255, 255, 255, 255},
		"compressed bomb":    {131, 80, 255, 255, 255, 255, 0x78, 0x9c, 0},
		"compressed garbage": {131, 80, 0, 0, 0, 2, 1, 2, 3, 4},
		"nested compressed":  {131, 104, 1, 80},
		"atom cache":         {131, 82, 0},
		"export arity":       {131, 113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 1, 0},
	}
	for name, in := range cases {
		assert.NotPanics(t, func() {
			_, err := Decode(in)
			assert.Error(t, err, name)
		}, name)
	}
}

func TestDecodeDepthBounded(t *testing.T) {
	deep := func(n int) []byte {
		b := []byte{131}
		for range n {
			b = append(b, 108, 0, 0, 0, 1) // [ X ] nested n times
		}
		b = append(b, 106)
		for range n {
			b = append(b, 106)
		}
		return b
	}
	_, err := Decode(deep(DefaultMaxDepth))
	require.NoError(t, err)
	_, err = Decode(deep(DefaultMaxDepth + 1))
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Msg, "nested deeper")

	d := Decoder{MaxDepth: 10}
	_, err = d.Decode(deep(11))
	assert.Error(t, err)
}

func TestCompressedLimits(t *testing.T) {
	payload := Binary(bytes.Repeat([]byte{'z'}, 1<<20))
	enc := Encoder{CompressThreshold: 64}
	b, err := enc.Encode(payload)
	require.NoError(t, err)
	require.Equal(t, byte(TagCompressed), b[1])
	assert.Less(t, len(b), 10<<10)

	got, err := Decode(b)
	require.NoError(t, err)
	assert.True(t, Equal(payload, got))

	small := Decoder{MaxInflated: 1 << 10}
	_, err = small.Decode(b)
	assert.ErrorContains(t, err, "over the limit")

	// Incompressible data stays plain.
	noise := make(Binary, 4096)
	for i := range noise {
		noise[i] = byte(i*7919>>3) ^ byte(i)
	}
	b, err = enc.Encode(Tuple{noise})
	require.NoError(t, err)
	if b[1] == TagCompressed {
		got, err := Decode(b)
		require.NoError(t, err)
		assert.True(t, Equal(Tuple{noise}, got))
	}
}

func TestBinariesAliasUnlessCopied(t *testing.T) {
	b, err := Encode(Tuple{Binary("abc")})
	require.NoError(t, err)
	shared, err := Decode(b)
	require.NoError(t, err)
	var d Decoder
	d.CopyBinaries = true
	owned, err := d.Decode(b)
	require.NoError(t, err)

	for i := range b {
		b[i] = 'X'
	}
	assert.Equal(t, Binary("XXX"), shared.(Tuple)[0], "a default decode aliases its input")
	assert.Equal(t, Binary("abc"), owned.(Tuple)[0], "CopyBinaries owns its bytes")
}

func TestDecodePrefixAndTerm(t *testing.T) {
	one, _ := Encode(OKTuple(int64(1)))
	two, _ := Encode(Exception("NameError", "x"))
	stream := append(append([]byte{}, one...), two...)
	var d Decoder
	t1, n, err := d.DecodePrefix(stream)
	require.NoError(t, err)
	assert.Equal(t, len(one), n)
	assert.True(t, Equal(OKTuple(1), t1))
	t2, _, err := d.DecodeTerm(stream[n+1:])
	require.NoError(t, err)
	tag, ok := Tag(t2)
	assert.True(t, ok)
	assert.Equal(t, ErrorAtom, tag)
}

func TestMapGetAndEqual(t *testing.T) {
	m := MapOf(Atom("a"), 1, Binary("b"), 2, Tuple{1}, 3)
	v, ok := m.Get("b")
	assert.True(t, ok)
	assert.True(t, Equal(2, v))
	_, ok = m.Get(Atom("b"))
	assert.False(t, ok, "atom b and binary b are different keys")
	assert.True(t, Equal(MapOf(Tuple{1}, 3, Atom("a"), 1, Binary("b"), 2), m), "maps compare without order")
	assert.False(t, Equal(1, 1.0), "integer and float differ")
	assert.False(t, Equal(0.0, negZero()), "floats compare bit for bit")
	i, ok := ToInt64(big.NewInt(7))
	assert.True(t, ok)
	assert.Equal(t, int64(7), i)
}

func TestDecodeRefusesDuplicateMapKeys(t *testing.T) {
	// #{a => 1, a => 1}, which binary_to_term refuses too.
	_, err := Decode([]byte{131, 116, 0, 0, 0, 2, 119, 1, 'a', 97, 1, 119, 1, 'a', 97, 1})
	assert.ErrorContains(t, err, "duplicate key")
	// The same key written two ways (Latin-1 and UTF-8 atom) is still one key.
	_, err = Decode([]byte{131, 116, 0, 0, 0, 2, 100, 0, 1, 'a', 97, 1, 119, 1, 'a', 97, 2})
	assert.ErrorContains(t, err, "duplicate key")
	big := Map{}
	for i := range 20 {
		big = append(big, Pair{int64(i), int64(i)})
	}
	big = append(big, Pair{int64(3), int64(0)})
	b, err := Encode(big)
	require.NoError(t, err)
	_, err = Decode(b)
	assert.ErrorContains(t, err, "duplicate key")
}
