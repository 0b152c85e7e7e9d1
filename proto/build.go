package proto

import (
	"fmt"
	"time"

	"github.com/erlang-python/erlang_python/etf"
)

// AppendReply appends a reply packet built in Go: id's versioned encoding,
// then result's. It refuses an id that is no reply address (IsReplyID):
// the port owner would take the packet for something else. On error dst
// is returned as it was.
func AppendReply(dst []byte, id, result etf.Term) ([]byte, error) {
	if !IsReplyID(id) {
		return dst, fmt.Errorf("proto: %v is no reply address", id)
	}
	return AppendPacket(dst, id, result)
}

// AppendPacket appends a packet of two versioned terms, first (an id)
// then body, whatever first is. On error dst is returned as it was.
func AppendPacket(dst []byte, first, body etf.Term) ([]byte, error) {
	var e etf.Encoder
	out, err := e.Append(dst, first)
	if err == nil {
		out, err = e.Append(out, body)
	}
	if err != nil {
		return dst[:len(dst):len(dst)], err
	}
	return out, nil
}

// AppendOKPrefix appends the versioned {ok, Value} up to Value, whose
// encoding (no version byte) the caller appends: a result around a term
// that is already encoded, such as a state_fetch's value.
func AppendOKPrefix(dst []byte) []byte {
	dst = append(dst, etf.VersionTag)
	dst = etf.AppendTupleHeader(dst, 2)
	dst, _ = etf.AppendTerm(dst, etf.OK) // an atom always encodes
	return dst
}

// AppendStuck appends the '$exit' packet of the stuck watchdog,
// '$exit' then {stuck, Ctx, GraceMs}: a request of context ctx, cancelled
// while it ran, still runs grace after its cancel, and pyport exits.
func AppendStuck(dst []byte, ctx int64, grace time.Duration) []byte {
	out, _ := AppendPacket(dst, IDExit, etf.Tuple{AtomStuck, ctx, grace.Milliseconds()}) // integers and atoms always encode
	return out
}

// BadRequest returns {error, {bad_request, Msg}}, the result of a request
// that cannot be read (docs/PROTOCOL.md, bad input), Msg formatted as by
// fmt.Sprintf.
func BadRequest(format string, args ...any) etf.Tuple {
	return etf.ErrorTuple(etf.Tuple{AtomBadRequest, etf.Binary(fmt.Sprintf(format, args...))})
}

// UnknownContext returns {error, {unknown_context, Ctx}}.
func UnknownContext(ctx etf.Term) etf.Tuple {
	return etf.ErrorTuple(etf.Tuple{AtomUnknownContext, ctx})
}

// ContextExists returns {error, {context_exists, Ctx}}, create_context's
// result for a number already taken.
func ContextExists(ctx etf.Term) etf.Tuple {
	return etf.ErrorTuple(etf.Tuple{AtomContextExists, ctx})
}

// Overloaded returns {error, {overloaded, queue}}: the context's queue
// could not take the request.
func Overloaded() etf.Tuple {
	return etf.ErrorTuple(etf.Tuple{AtomOverloaded, AtomQueue})
}

// Info is what the info request reports of the sidecar.
type Info struct {
	Mode               string // subinterp, multi_executor or free_threaded
	PythonVersion      string // Python's version string
	NumExecutors       int    // shared executors in multi_executor mode
	SubinterpSupported bool   // own-GIL sub-interpreters are used
	// SlotMin is the size from which an executor writes a result into
	// the caller's slot rather than into the reply (docs/PROTOCOL.md,
	// Slots).
	SlotMin int
}

// InfoResult returns the info request's result, {ok, #{mode, version,
// num_executors, subinterp_supported, protocol, slot_min}}, protocol
// being Version.
func InfoResult(i Info) etf.Tuple {
	return etf.OKTuple(etf.MapOf(
		etf.Atom("mode"), etf.Atom(i.Mode),
		etf.Atom("version"), etf.Binary(i.PythonVersion),
		etf.Atom("num_executors"), i.NumExecutors,
		etf.Atom("subinterp_supported"), i.SubinterpSupported,
		etf.Atom("protocol"), Version,
		etf.Atom("slot_min"), i.SlotMin,
	))
}
