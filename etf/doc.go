// Package etf reads and writes the Erlang External Term Format, the
// encoding of term_to_binary/1 and binary_to_term/1.
//
// # Term model
//
// A decoded term is one of these Go values:
//
//	integer            int64, or *big.Int when it does not fit in an int64
//	float              float64
//	atom               Atom (true and false are the atoms "true" and "false")
//	tuple              Tuple
//	proper list        List (the empty list is List{} or nil)
//	improper list      ImproperList
//	binary             Binary
//	bitstring          BitBinary
//	map                Map
//	pid, port, ref     Pid, Port, Ref
//	external fun       Export (fun M:F/A)
//	other fun          Fun, opaque, re-encoded byte for byte
//
// STRING_EXT, the compact form of a list of bytes, decodes to a List of
// int64, so a term does not change shape with the way the BEAM chose to
// write it. The encoder also accepts the ordinary Go types: every integer
// type, float32, bool (as an atom), string and []byte (as binaries),
// []Term (as a list), map[Atom]Term and map[string]Term (as maps with
// atom and binary keys).
//
// # Sharing of binaries
//
// By default the decoder does not copy binaries: a Binary, BitBinary or Fun
// in a decoded term aliases the input slice. Such a term stays valid as
// long as the input is neither modified nor reused; a caller that reuses
// its buffer (for example a reader loop with one growing frame buffer)
// sets Decoder.CopyBinaries, or clones the values it keeps. Terms that come
// out of a compressed payload never alias the caller's input.
//
// # Envelopes
//
// A protocol that frames terms (a header term, then a payload term that
// someone else reads) need not build what it only forwards: Skip gives
// the span of one term, checked as the decoder would but built not;
// TupleHeader and ListHeader read a tuple's or a list's header, the Tag
// constants name the encodings; RawTerm carries an encoding that
// AppendTerm then writes verbatim, and AppendTupleHeader starts a tuple
// whose elements are appended after it.
//
// # Bad input
//
// The decoder never panics on bad input and never allocates from a length
// field it has not checked against the bytes that remain: every element of
// a list, tuple or map takes at least one byte, so a count larger than the
// remaining input is an error before any allocation. Nesting depth is
// bounded (Decoder.MaxDepth) and so is the size a compressed term may
// inflate to (Decoder.MaxInflated, and never more than zlib's best ratio
// allows for the compressed bytes given).
package etf
