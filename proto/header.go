package proto

import (
	"fmt"

	"github.com/erlang-python/erlang_python/etf"
)

// headerDecoder reads headers: small terms, so a compressed one may not
// inflate past 1 MiB (the default allows 256 MiB, for payloads); nesting
// stops at etf.DefaultMaxDepth. It is only read, so its methods are
// called on it directly (a copy of it would go to the heap at each call).
var headerDecoder = etf.Decoder{MaxInflated: 1 << 20}

// Header is a request's header, {Tag, Id, Args...}, decoded.
type Header struct {
	// Elems is the whole header, at least {Tag, Id}.
	Elems etf.Tuple
	// Tag is Elems[0] when it is an atom, else "".
	Tag etf.Atom
	// ID is Elems[1], the reply address (IsReplyID tells).
	ID etf.Term
	// RawID is the id's encoding, without version byte, as it came: a
	// slice of the packet. It is nil when the header came compressed.
	RawID etf.RawTerm
	// RawCaller is, for a call, eval or exec of six elements, the
	// encoding of its sixth, the calling process's pid (CallerIndex), as
	// it came: a slice of the packet; nil for other headers, a caller
	// that is no pid, or a compressed header.
	RawCaller etf.RawTerm
	// Len is the number of bytes the header takes: what follows it,
	// packet[Len:], is the body.
	Len int
}

// Args returns the header's elements after the id.
func (h *Header) Args() etf.Tuple { return h.Elems[2:] }

// AppendID appends the id's versioned encoding, the first term of its
// reply: the bytes that came when it can, without encoding it again.
func (h *Header) AppendID(dst []byte) ([]byte, error) {
	if h.RawID != nil {
		return append(append(dst, etf.VersionTag), h.RawID...), nil
	}
	var e etf.Encoder
	return e.Append(dst, h.ID)
}

// NotHeaderError is a packet whose first term is no tuple of two or more
// elements, so it has no id to answer.
type NotHeaderError struct {
	Term etf.Term // the term read
}

func (e *NotHeaderError) Error() string {
	return fmt.Sprintf("proto: header %v is not a tuple {Tag, Id, ...}", e.Term)
}

// DecodeHeader decodes the header at the start of packet. It fails with
// etf's error when the header is no term (HeaderID may still find its id)
// and with a *NotHeaderError when the term is no {Tag, Id, ...}.
func DecodeHeader(packet []byte) (Header, error) {
	head, n, err := headerDecoder.DecodePrefix(packet)
	if err != nil {
		return Header{}, err
	}
	elems, _ := head.(etf.Tuple)
	if len(elems) < 2 {
		return Header{}, &NotHeaderError{head}
	}
	h := Header{Elems: elems, ID: elems[1], Len: n}
	h.Tag, _ = elems[0].(etf.Atom)
	last := 1
	if len(elems) == CallerIndex+1 {
		if _, ok := elems[CallerIndex].(etf.Pid); ok {
			last = CallerIndex
		}
	}
	h.RawID, h.RawCaller = rawElems(packet, last)
	return h, nil
}

// CallerIndex is the place of the caller's pid in a call, eval or exec
// header {Op, Id, Ctx, Slot | none, Chain | none, Caller}.
const CallerIndex = 5

// rawElems finds the spans of the id (the second element of the header's
// tuple) and, when last is CallerIndex, of the caller in a header that
// decoded; nil when the header is compressed.
func rawElems(packet []byte, last int) (id, caller etf.RawTerm) {
	if len(packet) < 2 || packet[1] == etf.TagCompressed {
		return nil, nil
	}
	_, pos, err := etf.TupleHeader(packet[1:])
	if err != nil {
		return nil, nil
	}
	pos++
	for i := 0; i <= last; i++ {
		n, err := headerDecoder.Skip(packet[pos:])
		if err != nil {
			return id, nil
		}
		switch i {
		case 1:
			id = etf.RawTerm(packet[pos : pos+n : pos+n])
		case CallerIndex:
			caller = etf.RawTerm(packet[pos : pos+n : pos+n])
		}
		pos += n
	}
	return id, caller
}

// HeaderID reads the id of a header that cannot be decoded whole, such
// as {call, Id, Garbage} or one cut short: the second element of a tuple,
// when the first two can be read and the id is one a reply can go to
// (IsReplyID).
func HeaderID(packet []byte) (etf.Term, bool) {
	if len(packet) < 3 || packet[0] != etf.VersionTag {
		return nil, false
	}
	arity, pos, err := etf.TupleHeader(packet[1:])
	if err != nil || arity < 2 {
		return nil, false
	}
	pos++
	_, n, err := headerDecoder.DecodeTerm(packet[pos:])
	if err != nil {
		return nil, false
	}
	id, _, err := headerDecoder.DecodeTerm(packet[pos+n:])
	if err != nil || !IsReplyID(id) {
		return nil, false
	}
	return id, true
}

// IsRequestID reports whether id can be a call's, eval's or exec's: its
// caller's alias, {nested, Alias} for a request made by a callback,
// which holds no py_semaphore slot (the port owner must not give one back
// for its reply), or {cast, Ref} for a py:cast, whose reply the port owner
// reads itself (it gives the slot back and logs an error result).
func IsRequestID(id etf.Term) bool {
	if _, ok := id.(etf.Ref); ok {
		return true
	}
	t, ok := id.(etf.Tuple)
	if !ok || len(t) != 2 || (t[0] != AtomNested && t[0] != AtomCast) {
		return false
	}
	_, ok = t[1].(etf.Ref)
	return ok
}

// IsReplyID reports whether id is one the port owner routes a reply to:
// a reference, {ctl, Reference}, {nested, Reference} or {cast, Reference}. A reply to any
// other id would be read by the port owner as a call's reply (or a log
// line, or a callback), so it is never sent.
func IsReplyID(id etf.Term) bool {
	if t, ok := id.(etf.Tuple); ok && len(t) == 2 && t[0] == AtomCtl {
		_, ok = t[1].(etf.Ref)
		return ok
	}
	return IsRequestID(id)
}
