package etf

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// An UnsupportedError is returned for a Go value the term model has no
// encoding for (a channel, NaN, an atom of 300 characters...).
type UnsupportedError struct {
	Value Term
	Why   string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("etf: cannot encode %T: %s", e.Value, e.Why)
}

// Encoder encodes terms. Its zero value never compresses.
type Encoder struct {
	// CompressThreshold: a term whose encoding is larger than this many
	// bytes is written compressed (tag 80) when that is smaller.
	// 0 never compresses.
	CompressThreshold int
	// CompressLevel is the zlib level; 0 means zlib.DefaultCompression.
	CompressLevel int
}

// Encode encodes t as term_to_binary/1 would: version byte first, no
// compression.
func Encode(t Term) ([]byte, error) {
	return AppendTerm([]byte{VersionTag}, t)
}

// Encode encodes t with its version byte, compressed when the Encoder says.
func (e *Encoder) Encode(t Term) ([]byte, error) {
	return e.Append(nil, t)
}

// Append appends the versioned encoding of t to dst.
func (e *Encoder) Append(dst []byte, t Term) ([]byte, error) {
	start := len(dst)
	dst = append(dst, VersionTag)
	dst, err := AppendTerm(dst, t)
	if err != nil {
		return dst[:start], err
	}
	plain := dst[start+1:]
	if e.CompressThreshold <= 0 || len(plain) <= e.CompressThreshold || len(plain) > math.MaxUint32 {
		return dst, nil
	}
	var z bytes.Buffer
	level := e.CompressLevel
	if level == 0 {
		level = zlib.DefaultCompression
	}
	zw, err := zlib.NewWriterLevel(&z, level)
	if err != nil {
		return dst[:start], err
	}
	zw.Write(plain) // writes to a bytes.Buffer cannot fail
	zw.Close()
	if z.Len()+5 >= len(plain) {
		return dst, nil
	}
	out := append(dst[:start+1], TagCompressed)
	out = binary.BigEndian.AppendUint32(out, uint32(len(plain)))
	return append(out, z.Bytes()...), nil
}

// AppendTerm appends the encoding of t, without a version byte, to dst.
// On error dst may hold part of the term.
func AppendTerm(dst []byte, t Term) ([]byte, error) {
	switch v := t.(type) {
	case Atom:
		return appendAtom(dst, v)
	case bool:
		return appendAtom(dst, Bool(v))
	case int64:
		return appendInt(dst, v), nil
	case int:
		return appendInt(dst, int64(v)), nil
	case uint64:
		if v > math.MaxInt64 {
			return appendBig(dst, new(big.Int).SetUint64(v)), nil
		}
		return appendInt(dst, int64(v)), nil
	case uint:
		return AppendTerm(dst, uint64(v))
	case *big.Int:
		if v == nil {
			return dst, &UnsupportedError{t, "nil *big.Int"}
		}
		if v.IsInt64() {
			return appendInt(dst, v.Int64()), nil
		}
		return appendBig(dst, v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return dst, &UnsupportedError{t, "Erlang floats have no NaN or infinity"}
		}
		dst = append(dst, TagNewFloat)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(v)), nil
	case float32:
		return AppendTerm(dst, float64(v))
	case Binary:
		return appendBinary(dst, v)
	case []byte:
		return appendBinary(dst, v)
	case string:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, &UnsupportedError{t, "binary over 4 GiB"}
		}
		dst = append(dst, TagBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		return append(dst, v...), nil
	case Tuple:
		return appendTuple(dst, v)
	case List:
		return appendList(dst, v, nil)
	case []Term:
		return appendList(dst, v, nil)
	case ImproperList:
		if len(v.Elems) == 0 {
			return dst, &UnsupportedError{t, "improper list without elements"}
		}
		return appendList(dst, v.Elems, v.Tail)
	case Map:
		dst = append(dst, TagMap)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		var err error
		for _, p := range v {
			if dst, err = AppendTerm(dst, p.Key); err != nil {
				return dst, err
			}
			if dst, err = AppendTerm(dst, p.Value); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case map[Atom]Term:
		dst = append(dst, TagMap)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		var err error
		for k, val := range v {
			if dst, err = appendAtom(dst, k); err != nil {
				return dst, err
			}
			if dst, err = AppendTerm(dst, val); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case map[string]Term:
		dst = append(dst, TagMap)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		var err error
		for k, val := range v {
			if dst, err = AppendTerm(dst, k); err != nil {
				return dst, err
			}
			if dst, err = AppendTerm(dst, val); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case BitBinary:
		if v.Bits < 1 || v.Bits > 7 || len(v.Data) == 0 || uint64(len(v.Data)) > math.MaxUint32 {
			return dst, &UnsupportedError{t, "bitstring needs data and 1 to 7 bits in its last byte"}
		}
		dst = append(dst, TagBitBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v.Data)))
		dst = append(dst, v.Bits)
		return append(dst, v.Data...), nil
	case Pid:
		dst = append(dst, TagNewPid)
		dst, err := appendAtom(dst, v.Node)
		if err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, v.ID)
		dst = binary.BigEndian.AppendUint32(dst, v.Serial)
		return binary.BigEndian.AppendUint32(dst, v.Creation), nil
	case Port:
		tag := byte(TagNewPort)
		if v.ID > math.MaxUint32 {
			tag = TagV4Port
		}
		dst = append(dst, tag)
		dst, err := appendAtom(dst, v.Node)
		if err != nil {
			return dst, err
		}
		if tag == TagV4Port {
			dst = binary.BigEndian.AppendUint64(dst, v.ID)
		} else {
			dst = binary.BigEndian.AppendUint32(dst, uint32(v.ID))
		}
		return binary.BigEndian.AppendUint32(dst, v.Creation), nil
	case Ref:
		if v.Len < 1 || v.Len > MaxRefWords {
			return dst, &UnsupportedError{t, "reference needs 1 to 5 words"}
		}
		dst = append(dst, TagNewerReference)
		dst = binary.BigEndian.AppendUint16(dst, uint16(v.Len))
		dst, err := appendAtom(dst, v.Node)
		if err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, v.Creation)
		for i := range int(v.Len) { // indexing, unlike Words(), keeps v off the heap
			dst = binary.BigEndian.AppendUint32(dst, v.IDs[i])
		}
		return dst, nil
	case Export:
		dst = append(dst, TagExport)
		dst, err := appendAtom(dst, v.Module)
		if err != nil {
			return dst, err
		}
		if dst, err = appendAtom(dst, v.Function); err != nil {
			return dst, err
		}
		return append(dst, TagSmallInteger, v.Arity), nil
	case RawTerm:
		if len(v) == 0 {
			return dst, &UnsupportedError{t, "a raw term without its encoding"}
		}
		return append(dst, v...), nil
	case Fun:
		if len(v.Raw) == 0 || v.Raw[0] != TagNewFun {
			return dst, &UnsupportedError{t, "fun without its encoding"}
		}
		return append(dst, v.Raw...), nil
	case int32, int16, int8, uint32, uint16, uint8:
		i, _ := asInt64(v)
		return appendInt(dst, i), nil
	case nil:
		return dst, &UnsupportedError{t, "nil has no Erlang term; use an atom such as undefined"}
	}
	return dst, &UnsupportedError{t, "not a type of the term model"}
}

func appendAtom(dst []byte, a Atom) ([]byte, error) {
	if !validAtom(string(a)) {
		return dst, &UnsupportedError{a, "atoms are valid UTF-8 of at most 255 characters"}
	}
	if len(a) <= 255 {
		dst = append(dst, TagSmallAtomUTF8, byte(len(a)))
	} else {
		dst = append(dst, TagAtomUTF8)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(a)))
	}
	return append(dst, a...), nil
}

func appendInt(dst []byte, i int64) []byte {
	switch {
	case i >= 0 && i <= 255:
		return append(dst, TagSmallInteger, byte(i))
	case i >= math.MinInt32 && i <= math.MaxInt32:
		dst = append(dst, TagInteger)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(i)))
	}
	sign, u := byte(0), uint64(i)
	if i < 0 {
		sign, u = 1, uint64(-i) // MinInt64 wraps to 1<<63, its magnitude
	}
	n := (bitsLen(u) + 7) / 8
	dst = append(dst, TagSmallBig, byte(n), sign)
	for ; n > 0; n-- {
		dst = append(dst, byte(u))
		u >>= 8
	}
	return dst
}

func bitsLen(u uint64) int {
	n := 0
	for ; u != 0; u >>= 1 {
		n++
	}
	return n
}

func appendBig(dst []byte, v *big.Int) []byte {
	be := new(big.Int).Abs(v).Bytes()
	n := len(be)
	sign := byte(0)
	if v.Sign() < 0 {
		sign = 1
	}
	if n <= 255 {
		dst = append(dst, TagSmallBig, byte(n), sign)
	} else {
		dst = append(dst, TagLargeBig)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		dst = append(dst, sign)
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, be[i])
	}
	return dst
}

func appendBinary(dst []byte, b []byte) ([]byte, error) {
	if uint64(len(b)) > math.MaxUint32 {
		return dst, &UnsupportedError{b, "binary over 4 GiB"}
	}
	dst = append(dst, TagBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...), nil
}

func appendTuple(dst []byte, t Tuple) ([]byte, error) {
	if len(t) <= 255 {
		dst = append(dst, TagSmallTuple, byte(len(t)))
	} else {
		dst = append(dst, TagLargeTuple)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(t)))
	}
	var err error
	for _, e := range t {
		if dst, err = AppendTerm(dst, e); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendList writes a list; a nil tail means a proper list. A proper list
// of bytes is written as STRING_EXT, as the BEAM does.
func appendList(dst []byte, elems []Term, tail Term) ([]byte, error) {
	if len(elems) == 0 && tail == nil {
		return append(dst, TagNil), nil
	}
	if tail == nil && len(elems) <= math.MaxUint16 {
		if isByteString(elems) {
			dst = append(dst, TagString)
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(elems)))
			for _, e := range elems {
				i, _ := asInt64(e)
				dst = append(dst, byte(i))
			}
			return dst, nil
		}
	}
	dst = append(dst, TagList)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(elems)))
	var err error
	for _, e := range elems {
		if dst, err = AppendTerm(dst, e); err != nil {
			return dst, err
		}
	}
	if tail == nil {
		return append(dst, TagNil), nil
	}
	return AppendTerm(dst, tail)
}

func isByteString(elems []Term) bool {
	for _, e := range elems {
		i, ok := asInt64(e)
		if !ok || i < 0 || i > 255 {
			return false
		}
	}
	return true
}
