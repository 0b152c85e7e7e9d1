package proto

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
)

func TestDecodeAtomsLoad(t *testing.T) {
	enc := func(term etf.Term) []byte {
		b, err := etf.Encode(term)
		require.NoError(t, err)
		return b
	}
	a, err := DecodeAtomsLoad(enc(etf.Tuple{7, etf.List{etf.Binary("x"), etf.Binary("")}, etf.List{}}))
	require.NoError(t, err)
	require.Equal(t, AtomsLoad{Spent: 7, Created: [][]byte{[]byte("x"), []byte("")}, Known: [][]byte{}}, a)
	for _, bad := range []etf.Term{
		etf.Tuple{7, etf.List{}},
		etf.Tuple{-1, etf.List{}, etf.List{}},
		etf.Tuple{etf.Atom("x"), etf.List{}, etf.List{}},
		etf.Tuple{1, etf.List{1}, etf.List{}},
		etf.Tuple{1, etf.List{}, etf.Binary("notalist")},
		etf.List{},
	} {
		_, err := DecodeAtomsLoad(enc(bad))
		require.Error(t, err, "%v", bad)
	}
	_, err = DecodeAtomsLoad([]byte{131, 255})
	require.Error(t, err)
}
