package etf

import (
	"math/big"
	"unicode/utf8"
)

// Term is any value of the term model described in the package comment.
type Term = any

// Atom is an Erlang atom, held as UTF-8.
type Atom string

// Tuple is an Erlang tuple.
type Tuple []Term

// List is a proper Erlang list.
type List []Term

// ImproperList is a list whose tail is not the empty list: [1, 2 | Tail].
// Elems has at least one element.
type ImproperList struct {
	Elems []Term
	Tail  Term
}

// Binary is an Erlang binary (a bitstring whose size is a multiple of 8).
type Binary []byte

// BitBinary is a bitstring whose size is not a multiple of 8. The last byte
// of Data holds Bits significant bits (1 to 7), in its high end.
type BitBinary struct {
	Data []byte
	Bits uint8
}

// Pair is one association of a Map.
type Pair struct {
	Key, Value Term
}

// Map is an Erlang map, as its associations in the order they were read.
// Keys may be any term; Get finds one by term equality.
type Map []Pair

// Pid is an Erlang process identifier.
type Pid struct {
	Node     Atom
	ID       uint32
	Serial   uint32
	Creation uint32
}

// Port is an Erlang port identifier.
type Port struct {
	Node     Atom
	ID       uint64
	Creation uint32
}

// MaxRefWords is the largest number of 32-bit words in a reference.
const MaxRefWords = 5

// Ref is an Erlang reference. It is comparable, so it can key a Go map.
type Ref struct {
	Node     Atom
	Creation uint32
	Len      uint8 // words used in IDs, 1 to MaxRefWords
	IDs      [MaxRefWords]uint32
}

// Export is an external fun, fun Module:Function/Arity.
type Export struct {
	Module, Function Atom
	Arity            uint8
}

// Fun is a local fun, kept opaque: Raw is its whole encoding, tag
// included, and is written back unchanged.
type Fun struct {
	Raw []byte
}

// Common atoms.
const (
	True      Atom = "true"
	False     Atom = "false"
	OK        Atom = "ok"
	ErrorAtom Atom = "error"
	Undefined Atom = "undefined"
	None      Atom = "none"
	Nil       Atom = "nil"
)

// Get returns the value associated with key, compared with Equal.
func (m Map) Get(key Term) (Term, bool) {
	for _, p := range m {
		if Equal(p.Key, key) {
			return p.Value, true
		}
	}
	return nil, false
}

// MapOf builds a Map from alternating keys and values. It panics on an odd
// number of arguments, which is a programming error.
func MapOf(kv ...Term) Map {
	if len(kv)%2 != 0 {
		panic("etf.MapOf: odd number of arguments")
	}
	m := make(Map, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m = append(m, Pair{kv[i], kv[i+1]})
	}
	return m
}

// Words returns the used words of the reference.
func (r Ref) Words() []uint32 { return r.IDs[:r.Len] }

// Bool returns the atom true or false.
func Bool(b bool) Atom {
	if b {
		return True
	}
	return False
}

// OKTuple returns {ok, V}.
func OKTuple(v Term) Tuple { return Tuple{OK, v} }

// ErrorTuple returns {error, Reason}.
func ErrorTuple(reason Term) Tuple { return Tuple{ErrorAtom, reason} }

// Exception returns {error, {Name, Message}}, the shape of a Python
// exception seen from Erlang, e.g. {error, {'NameError', <<"...">>}}.
func Exception(name, message string) Tuple {
	return Tuple{ErrorAtom, Tuple{Atom(name), Binary(message)}}
}

// Tag returns the first element of a tuple when it is an atom, the usual
// way to tell messages apart ({call, ...}, {ok, ...}).
func Tag(t Term) (Atom, bool) {
	tup, ok := t.(Tuple)
	if !ok || len(tup) == 0 {
		return "", false
	}
	a, ok := tup[0].(Atom)
	return a, ok
}

// ToInt64 returns an integer term as an int64, when it is one and fits.
func ToInt64(t Term) (int64, bool) {
	switch v := t.(type) {
	case int64:
		return v, true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}

// validAtom reports whether s can be an atom: valid UTF-8 of at most 255
// characters.
func validAtom(s string) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= 255
}
