package etf

import (
	"bytes"
	"math"
	"math/big"
)

// Equal reports whether two terms are the same Erlang term, as =:= would
// say of them once encoded: integers compare by value whatever their Go
// type, floats bit for bit, binaries by content whether Binary, []byte or
// string, lists whether List or []Term, and maps without regard to the
// order of their associations.
func Equal(a, b Term) bool {
	if ai, ok := asBig(a); ok {
		bi, ok := asBig(b)
		return ok && ai.Cmp(bi) == 0
	}
	if ab, ok := asBytes(a); ok {
		bb, ok := asBytes(b)
		return ok && bytes.Equal(ab, bb)
	}
	if al, ok := asList(a); ok {
		bl, ok := asList(b)
		return ok && equalSlices(al, bl)
	}
	switch av := a.(type) {
	case float64:
		bv, ok := b.(float64)
		return ok && math.Float64bits(av) == math.Float64bits(bv)
	case float32:
		return Equal(float64(av), b)
	case bool:
		return Equal(Bool(av), b)
	case Atom:
		if bb, ok := b.(bool); ok {
			return av == Bool(bb)
		}
		bv, ok := b.(Atom)
		return ok && av == bv
	case Tuple:
		bv, ok := b.(Tuple)
		return ok && equalSlices(av, bv)
	case ImproperList:
		bv, ok := b.(ImproperList)
		return ok && equalSlices(av.Elems, bv.Elems) && Equal(av.Tail, bv.Tail)
	case BitBinary:
		bv, ok := b.(BitBinary)
		return ok && av.Bits == bv.Bits && bytes.Equal(av.Data, bv.Data)
	case Map:
		bv, ok := b.(Map)
		return ok && equalMaps(av, bv)
	case Fun:
		bv, ok := b.(Fun)
		return ok && bytes.Equal(av.Raw, bv.Raw)
	case Pid, Port, Ref, Export:
		return a == b
	}
	return false
}

func equalSlices(a, b []Term) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func equalMaps(a, b Map) bool {
	if len(a) != len(b) {
		return false
	}
	for _, p := range a {
		v, ok := b.Get(p.Key)
		if !ok || !Equal(p.Value, v) {
			return false
		}
	}
	return true
}

func asBytes(t Term) ([]byte, bool) {
	switch v := t.(type) {
	case Binary:
		return v, true
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	}
	return nil, false
}

func asList(t Term) ([]Term, bool) {
	switch v := t.(type) {
	case List:
		return v, true
	case []Term:
		return v, true
	}
	return nil, false
}

// asBig returns an integer term of any Go integer type as a big.Int.
func asBig(t Term) (*big.Int, bool) {
	switch v := t.(type) {
	case *big.Int:
		return v, v != nil
	case uint64:
		return new(big.Int).SetUint64(v), true
	case uint:
		return new(big.Int).SetUint64(uint64(v)), true
	}
	if i, ok := asInt64(t); ok {
		return big.NewInt(i), true
	}
	return nil, false
}

// asInt64 returns an integer of a Go type that always fits in an int64.
func asInt64(t Term) (int64, bool) {
	switch v := t.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint8:
		return int64(v), true
	}
	return 0, false
}
