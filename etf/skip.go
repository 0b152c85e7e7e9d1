package etf

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// RawTerm is a term already encoded, without its version byte: AppendTerm
// writes it verbatim, unchecked. It carries a span found with Skip (an id
// forwarded as it came) or an encoding made elsewhere (a stored value)
// into a term that is encoded around it.
type RawTerm []byte

// Skip returns the number of bytes that the term at the start of data
// (no version byte, as for Decoder.DecodeTerm) takes, with the default
// limits, without building it.
func Skip(data []byte) (int, error) {
	return defaultDecoder.Skip(data)
}

// defaultDecoder is a zero Decoder, never written: Skip's, so that the
// Decoder does not go to the heap at each call.
var defaultDecoder Decoder

// Skip returns the number of bytes that the term at the start of data
// (no version byte) takes, without building it: for the terms that a
// BEAM writes today it allocates nothing.
// It checks what DecodeTerm checks, with the same MaxDepth, save one
// thing: it does not compare a map's keys, so a map with a duplicate key,
// which DecodeTerm refuses, is skipped. Whatever DecodeTerm accepts, Skip
// accepts with the same length.
func (d *Decoder) Skip(data []byte) (int, error) {
	r := reader{buf: data, dec: d}
	if _, err := r.skip(0); err != nil {
		return 0, err
	}
	return r.pos, nil
}

// TupleHeader reads the header of a tuple at the start of data (no
// version byte): its arity and the bytes the header takes, after which
// the elements follow. It does not read the elements, nor check the arity
// against the bytes that remain (every element takes at least one byte):
// a caller that allocates from it checks that first.
func TupleHeader(data []byte) (arity, n int, err error) {
	r := reader{buf: data}
	tag, err := r.u8("tag")
	if err != nil {
		return 0, 0, err
	}
	var a uint64
	switch tag {
	case TagSmallTuple:
		v, err := r.u8("tuple arity")
		if err != nil {
			return 0, 0, err
		}
		a = uint64(v)
	case TagLargeTuple:
		v, err := r.u32("tuple arity")
		if err != nil {
			return 0, 0, err
		}
		a = uint64(v)
	default:
		return 0, 0, &SyntaxError{0, fmt.Sprintf("tag %d, not a tuple", tag)}
	}
	if a > math.MaxInt { // 32-bit platforms only
		return 0, 0, &SyntaxError{1, fmt.Sprintf("tuple arity %d", a)}
	}
	return int(a), r.pos, nil
}

// ListHeader reads the header of a LIST_EXT list at the start of data (no
// version byte): the number of its elements and the bytes the header
// takes, after which the elements follow, then the tail (the empty list
// for a proper list). The empty list itself (TagNil) and a list of bytes
// (TagString) have no such header: they are an error here. As with
// TupleHeader, the length is not checked against the bytes that remain.
func ListHeader(data []byte) (length, n int, err error) {
	r := reader{buf: data}
	tag, err := r.u8("tag")
	if err != nil {
		return 0, 0, err
	}
	if tag != TagList {
		return 0, 0, &SyntaxError{0, fmt.Sprintf("tag %d, not a list", tag)}
	}
	v, err := r.u32("list length")
	if err != nil {
		return 0, 0, err
	}
	if uint64(v) > math.MaxInt { // 32-bit platforms only
		return 0, 0, &SyntaxError{1, fmt.Sprintf("list length %d", v)}
	}
	return int(v), r.pos, nil
}

// AppendTupleHeader appends the header of a tuple of arity elements, to
// be followed by the elements' encodings (AppendTerm).
func AppendTupleHeader(dst []byte, arity int) []byte {
	if arity <= math.MaxUint8 {
		return append(dst, TagSmallTuple, byte(arity))
	}
	dst = append(dst, TagLargeTuple)
	return binary.BigEndian.AppendUint32(dst, uint32(arity))
}

// skip moves past one term, checking it as term would. It reports
// whether the term is a proper list (the decoder treats a list whose only
// content is its tail by the tail's shape).
func (r *reader) skip(depth int) (properList bool, err error) {
	if depth > r.maxDepth() {
		return false, r.errf("term nested deeper than %d", r.maxDepth())
	}
	start := r.pos
	tag, err := r.u8("tag")
	if err != nil {
		return false, err
	}
	switch tag {
	case TagSmallInteger:
		_, err = r.take(1, "small integer")
	case TagInteger:
		_, err = r.take(4, "integer")
	case TagSmallBig:
		var n uint8
		if n, err = r.u8("big integer size"); err == nil {
			err = r.skipBig(int(n))
		}
	case TagLargeBig:
		var n uint32
		if n, err = r.u32("big integer size"); err != nil {
			return false, err
		}
		if uint64(n) > uint64(r.remaining()) {
			return false, r.truncated("big integer")
		}
		err = r.skipBig(int(n))
	case TagNewFloat:
		var v uint64
		v, err = r.u64("float")
		f := math.Float64frombits(v)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return false, r.errf("float NaN or infinity, which Erlang has not")
		}
	case TagFloat:
		_, err = r.oldFloat()
	case TagAtomUTF8, TagAtom:
		var n uint16
		if n, err = r.u16("atom length"); err == nil {
			err = r.skipAtomBody(int(n), tag == TagAtomUTF8)
		}
	case TagSmallAtomUTF8, TagSmallAtom:
		var n uint8
		if n, err = r.u8("atom length"); err == nil {
			err = r.skipAtomBody(int(n), tag == TagSmallAtomUTF8)
		}
	case TagSmallTuple:
		var n uint8
		if n, err = r.u8("tuple arity"); err == nil {
			err = r.skipElems(uint64(n), 1, depth, "tuple")
		}
	case TagLargeTuple:
		var n uint32
		if n, err = r.u32("tuple arity"); err == nil {
			err = r.skipElems(uint64(n), 1, depth, "tuple")
		}
	case TagNil:
		return true, nil
	case TagString:
		var n uint16
		if n, err = r.u16("string length"); err == nil {
			_, err = r.take(int(n), "string")
		}
		return err == nil, err
	case TagList:
		return r.skipList(depth)
	case TagBinary:
		var n uint32
		if n, err = r.u32("binary length"); err != nil {
			return false, err
		}
		if uint64(n) > uint64(r.remaining()) {
			return false, r.truncated(fmt.Sprintf("binary of %d bytes", n))
		}
		_, err = r.take(int(n), "binary")
	case TagBitBinary:
		err = r.skipBitBinary()
	case TagMap:
		var n uint32
		if n, err = r.u32("map arity"); err != nil {
			return false, err
		}
		var cnt int
		if cnt, err = r.count(uint64(n), 2, "map"); err != nil {
			return false, err
		}
		err = r.skipElems(2*uint64(cnt), 1, depth, "map")
	case TagNewPid, TagPid:
		if err = r.skipAtom(depth); err == nil {
			_, err = r.take(8, "pid id")
			if err == nil {
				_, err = r.creation(tag == TagNewPid)
			}
		}
	case TagNewPort, TagPort, TagV4Port:
		if err = r.skipAtom(depth); err != nil {
			return false, err
		}
		if tag == TagV4Port {
			_, err = r.u64("port id")
		} else {
			_, err = r.u32("port id")
		}
		if err == nil {
			_, err = r.creation(tag != TagPort)
		}
	case TagNewerReference, TagNewReference:
		var n uint16
		if n, err = r.u16("reference length"); err != nil {
			return false, err
		}
		if n < 1 || n > MaxRefWords {
			return false, r.errf("reference of %d words", n)
		}
		if err = r.skipAtom(depth); err != nil {
			return false, err
		}
		if _, err = r.creation(tag == TagNewerReference); err == nil {
			_, err = r.take(4*int(n), "reference id")
		}
	case TagReference:
		if err = r.skipAtom(depth); err == nil {
			if _, err = r.u32("reference id"); err == nil {
				_, err = r.creation(false)
			}
		}
	case TagExport:
		if err = r.skipAtom(depth); err != nil {
			return false, err
		}
		if err = r.skipAtom(depth); err != nil {
			return false, err
		}
		at := r.pos
		var arity Term // a small integer: boxed without allocating
		if arity, err = r.term(depth + 1); err != nil {
			return false, err
		}
		if a, ok := arity.(int64); !ok || a < 0 || a > 255 {
			return false, &SyntaxError{at, "export arity is not 0..255"}
		}
	case TagNewFun:
		var size uint32
		if size, err = r.u32("fun size"); err != nil {
			return false, err
		}
		if size < 4 || uint64(size-4) > uint64(r.remaining()) {
			return false, r.truncated("fun")
		}
		r.pos = start
		_, err = r.take(int(size)+1, "fun")
	case TagCompressed:
		return false, &SyntaxError{start, "compressed term inside a term"}
	case TagAtomCacheRef:
		return false, &SyntaxError{start, "atom cache reference outside distribution"}
	case TagLocal:
		return false, &SyntaxError{start, "LOCAL_EXT term (node-local encoding) not supported"}
	default:
		return false, &SyntaxError{start, fmt.Sprintf("unknown tag %d", tag)}
	}
	return false, err
}

// skipElems skips n terms one level down, after checking that the input
// can hold them, each taking at least minSize bytes.
func (r *reader) skipElems(n uint64, minSize, depth int, what string) error {
	cnt, err := r.count(n, minSize, what)
	if err != nil {
		return err
	}
	for range cnt {
		if _, err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) skipList(depth int) (bool, error) {
	n, err := r.u32("list length")
	if err != nil {
		return false, err
	}
	cnt, err := r.count(uint64(n)+1, 1, "list")
	if err != nil {
		return false, err
	}
	for range cnt - 1 {
		if _, err := r.skip(depth + 1); err != nil {
			return false, err
		}
	}
	proper, err := r.skip(depth + 1)
	if err != nil {
		return false, err
	}
	if cnt == 1 && !proper {
		return false, r.errf("list of no elements with a tail")
	}
	return proper, nil
}

func (r *reader) skipBitBinary() error {
	n, err := r.u32("bitstring length")
	if err != nil {
		return err
	}
	bits, err := r.u8("bitstring bits")
	if err != nil {
		return err
	}
	if uint64(n) > uint64(r.remaining()) {
		return r.truncated("bitstring")
	}
	if bits < 1 || bits > 8 || n == 0 {
		return r.errf("bitstring of %d bytes with %d bits in the last", n, bits)
	}
	_, err = r.take(int(n), "bitstring")
	return err
}

func (r *reader) skipBig(n int) error {
	sign, err := r.u8("big integer sign")
	if err != nil {
		return err
	}
	if sign > 1 {
		return r.errf("big integer sign %d", sign)
	}
	_, err = r.take(n, "big integer digits")
	return err
}

func (r *reader) skipAtomBody(n int, utf bool) error {
	b, err := r.take(n, "atom")
	if err != nil {
		return err
	}
	if !utf {
		if n > 255 {
			return r.errf("atom of %d characters", n)
		}
		return nil
	}
	if !utf8.Valid(b) {
		return r.errf("atom is not valid UTF-8")
	}
	if n > 255 && utf8.RuneCount(b) > 255 {
		return r.errf("atom of more than 255 characters")
	}
	return nil
}

// skipAtom skips the atom of a pid's, port's or reference's node field,
// one level down, as atom reads it.
func (r *reader) skipAtom(depth int) error {
	if depth+1 > r.maxDepth() {
		return r.errf("term nested deeper than %d", r.maxDepth())
	}
	at := r.pos
	if r.remaining() > 0 {
		switch r.buf[r.pos] {
		case TagAtomUTF8, TagAtom, TagSmallAtomUTF8, TagSmallAtom:
			_, err := r.skip(depth + 1)
			return err
		}
	}
	// not an atom: the decoder decodes it, then refuses it
	if _, err := r.skip(depth + 1); err != nil {
		return err
	}
	return &SyntaxError{at, "expected an atom"}
}
