package etf

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Default limits of a zero Decoder.
const (
	DefaultMaxDepth    = 1000
	DefaultMaxInflated = 256 << 20
)

// maxZlibRatio bounds how much zlib can inflate: deflate's best case is
// about 1032 to 1, so a larger claim is a lie or a bomb.
const maxZlibRatio = 1032

// ErrTruncated is returned (wrapped) when the input ends inside a term.
var ErrTruncated = errors.New("etf: truncated input")

// A SyntaxError describes bad input: what was wrong and at which offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("etf: %s at offset %d", e.Msg, e.Offset)
}

// Decoder decodes terms. Its zero value is ready to use, with the default
// limits and binaries that alias the input.
type Decoder struct {
	// MaxDepth bounds nesting of tuples, lists, maps and improper tails;
	// 0 means DefaultMaxDepth.
	MaxDepth int
	// MaxInflated bounds the uncompressed size of a compressed term;
	// 0 means DefaultMaxInflated.
	MaxInflated int
	// CopyBinaries makes binaries and funs own their bytes instead of
	// aliasing the input.
	CopyBinaries bool
}

// Decode decodes a whole term_to_binary payload (version byte first),
// with the default Decoder. The result may alias data.
func Decode(data []byte) (Term, error) {
	var d Decoder
	return d.Decode(data)
}

// Decode decodes a whole term_to_binary payload: the version byte, one
// term, and nothing after it.
func (d *Decoder) Decode(data []byte) (Term, error) {
	t, n, err := d.DecodePrefix(data)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, &SyntaxError{n, fmt.Sprintf("%d bytes after the term", len(data)-n)}
	}
	return t, nil
}

// DecodePrefix decodes one versioned term at the start of data and returns
// it with the number of bytes it took.
func (d *Decoder) DecodePrefix(data []byte) (Term, int, error) {
	if len(data) == 0 {
		return nil, 0, fmt.Errorf("%w: empty input", ErrTruncated)
	}
	if data[0] != VersionTag {
		return nil, 0, &SyntaxError{0, fmt.Sprintf("version byte %d, want %d", data[0], VersionTag)}
	}
	if len(data) > 1 && data[1] == TagCompressed {
		t, err := d.decodeCompressed(data[2:])
		if err != nil {
			return nil, 0, err
		}
		return t, len(data), nil
	}
	r := reader{buf: data, pos: 1, dec: d, copy: d.CopyBinaries}
	t, err := r.term(0)
	if err != nil {
		return nil, 0, err
	}
	return t, r.pos, nil
}

// DecodeTerm decodes one term without a version byte, as found inside an
// envelope built by hand. It returns the term and the bytes it took.
func (d *Decoder) DecodeTerm(data []byte) (Term, int, error) {
	r := reader{buf: data, dec: d, copy: d.CopyBinaries}
	t, err := r.term(0)
	if err != nil {
		return nil, 0, err
	}
	return t, r.pos, nil
}

func (d *Decoder) decodeCompressed(data []byte) (Term, error) {
	const off = 2
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: compressed term without its size", ErrTruncated)
	}
	size := uint64(binary.BigEndian.Uint32(data))
	limit := uint64(d.MaxInflated)
	if limit == 0 {
		limit = DefaultMaxInflated
	}
	if size > limit {
		return nil, &SyntaxError{off, fmt.Sprintf("compressed term inflates to %d bytes, over the limit %d", size, limit)}
	}
	if size > uint64(len(data)-4)*maxZlibRatio+64 {
		return nil, &SyntaxError{off, fmt.Sprintf("compressed term claims %d bytes from %d compressed", size, len(data)-4)}
	}
	zr, err := zlib.NewReader(bytes.NewReader(data[4:]))
	if err != nil {
		return nil, &SyntaxError{off + 4, "bad zlib stream: " + err.Error()}
	}
	plain := make([]byte, size)
	if _, err := io.ReadFull(zr, plain); err != nil {
		return nil, &SyntaxError{off + 4, "bad zlib stream: " + err.Error()}
	}
	var one [1]byte
	if n, _ := zr.Read(one[:]); n != 0 {
		return nil, &SyntaxError{off + 4, "compressed term longer than its declared size"}
	}
	// plain is ours alone, so binaries may alias it whatever CopyBinaries says.
	r := reader{buf: plain, dec: d}
	t, err := r.term(0)
	if err != nil {
		return nil, err
	}
	if r.pos != len(plain) {
		return nil, &SyntaxError{off, "compressed term shorter than its declared size"}
	}
	return t, nil
}

// reader walks one buffer. Every read checks the bytes that remain first.
type reader struct {
	buf  []byte
	pos  int
	dec  *Decoder
	copy bool
}

func (r *reader) errf(format string, args ...any) error {
	return &SyntaxError{r.pos, fmt.Sprintf(format, args...)}
}

func (r *reader) truncated(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrTruncated, what, r.pos)
}

func (r *reader) remaining() int { return len(r.buf) - r.pos }

func (r *reader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, r.truncated(what)
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

func (r *reader) u8(what string) (uint8, error) {
	if r.remaining() < 1 {
		return 0, r.truncated(what)
	}
	v := r.buf[r.pos]
	r.pos++
	return v, nil
}

func (r *reader) u16(what string) (uint16, error) {
	b, err := r.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// count reads a declared number of elements and checks that the input can
// hold them, each taking at least minSize bytes, before anyone allocates.
func (r *reader) count(n uint64, minSize int, what string) (int, error) {
	if n > uint64(r.remaining()/minSize) {
		return 0, r.errf("%s of %d elements in %d bytes", what, n, r.remaining())
	}
	return int(n), nil
}

func (r *reader) bytes(n int, what string) ([]byte, error) {
	b, err := r.take(n, what)
	if err != nil || !r.copy {
		return b, err
	}
	return bytes.Clone(b), nil
}

func (r *reader) maxDepth() int {
	if r.dec.MaxDepth > 0 {
		return r.dec.MaxDepth
	}
	return DefaultMaxDepth
}

func (r *reader) term(depth int) (Term, error) {
	if depth > r.maxDepth() {
		return nil, r.errf("term nested deeper than %d", r.maxDepth())
	}
	start := r.pos
	tag, err := r.u8("tag")
	if err != nil {
		return nil, err
	}
	switch tag {
	case TagSmallInteger:
		v, err := r.u8("small integer")
		return int64(v), err
	case TagInteger:
		v, err := r.u32("integer")
		return int64(int32(v)), err
	case TagSmallBig:
		n, err := r.u8("big integer size")
		if err != nil {
			return nil, err
		}
		return r.bigInt(int(n))
	case TagLargeBig:
		n, err := r.u32("big integer size")
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(r.remaining()) {
			return nil, r.truncated("big integer")
		}
		return r.bigInt(int(n))
	case TagNewFloat:
		v, err := r.u64("float")
		f := math.Float64frombits(v)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, r.errf("float NaN or infinity, which Erlang has not")
		}
		return f, err
	case TagFloat:
		return r.oldFloat()
	case TagAtomUTF8, TagAtom:
		n, err := r.u16("atom length")
		if err != nil {
			return nil, err
		}
		return r.atomBody(int(n), tag == TagAtomUTF8)
	case TagSmallAtomUTF8, TagSmallAtom:
		n, err := r.u8("atom length")
		if err != nil {
			return nil, err
		}
		return r.atomBody(int(n), tag == TagSmallAtomUTF8)
	case TagSmallTuple:
		n, err := r.u8("tuple arity")
		if err != nil {
			return nil, err
		}
		return r.tuple(uint64(n), depth)
	case TagLargeTuple:
		n, err := r.u32("tuple arity")
		if err != nil {
			return nil, err
		}
		return r.tuple(uint64(n), depth)
	case TagNil:
		return List(nil), nil
	case TagString:
		n, err := r.u16("string length")
		if err != nil {
			return nil, err
		}
		b, err := r.take(int(n), "string")
		if err != nil {
			return nil, err
		}
		l := make(List, n)
		for i, c := range b {
			l[i] = int64(c)
		}
		return l, nil
	case TagList:
		return r.list(depth)
	case TagBinary:
		n, err := r.u32("binary length")
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(r.remaining()) {
			return nil, r.truncated(fmt.Sprintf("binary of %d bytes", n))
		}
		b, err := r.bytes(int(n), "binary")
		return Binary(b), err
	case TagBitBinary:
		return r.bitBinary()
	case TagMap:
		return r.mapBody(depth)
	case TagNewPid, TagPid:
		return r.pid(tag == TagNewPid, depth)
	case TagNewPort, TagPort, TagV4Port:
		return r.port(tag, depth)
	case TagNewerReference, TagNewReference:
		return r.ref(tag == TagNewerReference, depth)
	case TagReference:
		return r.oldRef(depth)
	case TagExport:
		return r.export(depth)
	case TagNewFun:
		size, err := r.u32("fun size")
		if err != nil {
			return nil, err
		}
		// size counts itself but not the tag.
		if size < 4 || uint64(size-4) > uint64(r.remaining()) {
			return nil, r.truncated("fun")
		}
		r.pos = start
		b, err := r.bytes(int(size)+1, "fun")
		return Fun{Raw: b}, err
	case TagCompressed:
		return nil, &SyntaxError{start, "compressed term inside a term"}
	case TagAtomCacheRef:
		return nil, &SyntaxError{start, "atom cache reference outside distribution"}
	case TagLocal:
		return nil, &SyntaxError{start, "LOCAL_EXT term (node-local encoding) not supported"}
	}
	return nil, &SyntaxError{start, fmt.Sprintf("unknown tag %d", tag)}
}

func (r *reader) bigInt(n int) (Term, error) {
	sign, err := r.u8("big integer sign")
	if err != nil {
		return nil, err
	}
	if sign > 1 {
		return nil, r.errf("big integer sign %d", sign)
	}
	digits, err := r.take(n, "big integer digits")
	if err != nil {
		return nil, err
	}
	// Digits are little-endian; fast path for what fits in 64 bits.
	if n <= 8 {
		var u uint64
		for i := n - 1; i >= 0; i-- {
			u = u<<8 | uint64(digits[i])
		}
		if sign == 0 && u <= math.MaxInt64 {
			return int64(u), nil
		}
		if sign == 1 && u <= 1<<63 {
			return int64(-u), nil // -(1<<63) wraps to itself, which is right
		}
	}
	be := make([]byte, n)
	for i, c := range digits {
		be[n-1-i] = c
	}
	v := new(big.Int).SetBytes(be)
	if sign == 1 {
		v.Neg(v)
	}
	if v.IsInt64() { // a big written for a small value: normalise
		return v.Int64(), nil
	}
	return v, nil
}

func (r *reader) oldFloat() (Term, error) {
	b, err := r.take(31, "float")
	if err != nil {
		return nil, err
	}
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, r.errf("bad float text %q", s)
	}
	return f, nil
}

func (r *reader) atomBody(n int, utf bool) (Term, error) {
	b, err := r.take(n, "atom")
	if err != nil {
		return nil, err
	}
	if !utf {
		if n > 255 {
			return nil, r.errf("atom of %d characters", n)
		}
		return latin1Atom(b), nil
	}
	if !utf8.Valid(b) {
		return nil, r.errf("atom is not valid UTF-8")
	}
	if n > 255 && utf8.RuneCount(b) > 255 {
		return nil, r.errf("atom of more than 255 characters")
	}
	return internAtom(b), nil
}

func latin1Atom(b []byte) Term {
	for _, c := range b {
		if c >= 0x80 {
			var sb strings.Builder
			sb.Grow(len(b) * 2)
			for _, c := range b {
				sb.WriteRune(rune(c))
			}
			return internAtom([]byte(sb.String()))
		}
	}
	return internAtom(b)
}

// atom reads an atom term, as found in the node field of a pid.
func (r *reader) atom(depth int) (Atom, error) {
	t, err := r.term(depth + 1)
	if err != nil {
		return "", err
	}
	a, ok := t.(Atom)
	if !ok {
		return "", r.errf("expected an atom, got %T", t)
	}
	return a, nil
}

func (r *reader) tuple(n uint64, depth int) (Term, error) {
	cnt, err := r.count(n, 1, "tuple")
	if err != nil {
		return nil, err
	}
	t := make(Tuple, cnt)
	for i := range t {
		if t[i], err = r.term(depth + 1); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (r *reader) list(depth int) (Term, error) {
	n, err := r.u32("list length")
	if err != nil {
		return nil, err
	}
	cnt, err := r.count(uint64(n)+1, 1, "list") // elements and the tail
	if err != nil {
		return nil, err
	}
	elems := make([]Term, cnt-1)
	for i := range elems {
		if elems[i], err = r.term(depth + 1); err != nil {
			return nil, err
		}
	}
	tail, err := r.term(depth + 1)
	if err != nil {
		return nil, err
	}
	if l, ok := tail.(List); ok {
		if len(l) == 0 {
			return List(elems), nil
		}
		// [a | [b, c]] written with an explicit list tail: flatten.
		return append(List(elems), l...), nil
	}
	if len(elems) == 0 {
		return nil, r.errf("list of no elements with a tail")
	}
	if il, ok := tail.(ImproperList); ok {
		return ImproperList{Elems: append(elems, il.Elems...), Tail: il.Tail}, nil
	}
	return ImproperList{Elems: elems, Tail: tail}, nil
}

func (r *reader) bitBinary() (Term, error) {
	n, err := r.u32("bitstring length")
	if err != nil {
		return nil, err
	}
	bits, err := r.u8("bitstring bits")
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(r.remaining()) {
		return nil, r.truncated("bitstring")
	}
	if bits < 1 || bits > 8 || n == 0 {
		return nil, r.errf("bitstring of %d bytes with %d bits in the last", n, bits)
	}
	b, err := r.bytes(int(n), "bitstring")
	if err != nil {
		return nil, err
	}
	if bits == 8 {
		return Binary(b), nil
	}
	return BitBinary{Data: b, Bits: bits}, nil
}

func (r *reader) mapBody(depth int) (Term, error) {
	n, err := r.u32("map arity")
	if err != nil {
		return nil, err
	}
	cnt, err := r.count(uint64(n), 2, "map")
	if err != nil {
		return nil, err
	}
	m := make(Map, cnt)
	for i := range m {
		if m[i].Key, err = r.term(depth + 1); err != nil {
			return nil, err
		}
		if m[i].Value, err = r.term(depth + 1); err != nil {
			return nil, err
		}
	}
	if hasDuplicateKey(m) {
		return nil, r.errf("map with a duplicate key") // as binary_to_term says
	}
	return m, nil
}

// hasDuplicateKey compares small maps' keys pairwise, and larger maps'
// keys by their canonical encoding.
func hasDuplicateKey(m Map) bool {
	if len(m) <= 8 {
		for i := range m {
			for j := i + 1; j < len(m); j++ {
				if Equal(m[i].Key, m[j].Key) {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(m))
	var buf []byte
	for _, p := range m {
		var err error
		if buf, err = AppendTerm(buf[:0], p.Key); err != nil {
			return false // cannot happen for a decoded key
		}
		if _, dup := seen[string(buf)]; dup {
			return true
		}
		seen[string(buf)] = struct{}{}
	}
	return false
}

func (r *reader) pid(newer bool, depth int) (Term, error) {
	node, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	id, err := r.u32("pid id")
	if err != nil {
		return nil, err
	}
	serial, err := r.u32("pid serial")
	if err != nil {
		return nil, err
	}
	creation, err := r.creation(newer)
	return Pid{Node: node, ID: id, Serial: serial, Creation: creation}, err
}

func (r *reader) creation(newer bool) (uint32, error) {
	if newer {
		return r.u32("creation")
	}
	c, err := r.u8("creation")
	return uint32(c), err
}

func (r *reader) port(tag uint8, depth int) (Term, error) {
	node, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	var id uint64
	if tag == TagV4Port {
		id, err = r.u64("port id")
	} else {
		var v uint32
		v, err = r.u32("port id")
		id = uint64(v)
	}
	if err != nil {
		return nil, err
	}
	creation, err := r.creation(tag != TagPort)
	return Port{Node: node, ID: id, Creation: creation}, err
}

// minRefWords: the BEAM pads shorter references with zero words to three,
// and so do we, so that a reference equals itself however it was written.
const minRefWords = 3

func (r *reader) ref(newer bool, depth int) (Term, error) {
	n, err := r.u16("reference length")
	if err != nil {
		return nil, err
	}
	if n < 1 || n > MaxRefWords {
		return nil, r.errf("reference of %d words", n)
	}
	node, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	creation, err := r.creation(newer)
	if err != nil {
		return nil, err
	}
	ref := Ref{Node: node, Creation: creation, Len: max(uint8(n), minRefWords)}
	for i := 0; i < int(n); i++ {
		if ref.IDs[i], err = r.u32("reference id"); err != nil {
			return nil, err
		}
	}
	return ref, nil
}

func (r *reader) oldRef(depth int) (Term, error) {
	node, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	id, err := r.u32("reference id")
	if err != nil {
		return nil, err
	}
	creation, err := r.creation(false)
	ref := Ref{Node: node, Creation: creation, Len: minRefWords}
	ref.IDs[0] = id
	return ref, err
}

func (r *reader) export(depth int) (Term, error) {
	mod, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	fun, err := r.atom(depth)
	if err != nil {
		return nil, err
	}
	at := r.pos
	arity, err := r.term(depth + 1)
	if err != nil {
		return nil, err
	}
	a, ok := arity.(int64)
	if !ok || a < 0 || a > 255 {
		return nil, &SyntaxError{at, "export arity is not 0..255"}
	}
	return Export{Module: mod, Function: fun, Arity: uint8(a)}, nil
}
