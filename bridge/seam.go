package bridge

import (
	"errors"

	"github.com/erlang-python/erlang_python/proto"
)

// The seams: what the server needs of the Python pool, of the shared
// state's store and of the port's writer. cmd/pyport adapts the real ones
// (CPython, the C store, the C writer); tests use fakes, so routing is
// tested without CPython. The server calls them from its reader goroutine,
// but for Pool.NewContext, called from a goroutine of its own.

// Pool runs Python contexts.
type Pool interface {
	// NewContext creates a context of the given kind, numbered id for the
	// BEAM. It blocks until the context is ready (a sub-interpreter
	// takes about 10 ms). Its error's text is the create_context's
	// {error, Text}.
	NewContext(kind proto.ContextKind, id int64) (Context, error)
	// Cancel stops the request whose reply goes to id (a versioned id, as
	// Submit got it, valid only during the call): one not started never
	// runs, one running is interrupted; either still gets its one reply.
	// It returns at once.
	Cancel(id []byte)
	// Info is what the info request reports.
	Info() proto.Info
	// Exited: the process whose pid is pid (its ETF, no version byte,
	// valid only during the call) exited; erlang.send forgets it as alive.
	Exited(pid []byte)
}

// Context is one Python context. Its methods never block on Python.
type Context interface {
	// Submit queues a request whose reply the executor writes to the
	// port itself: id (versioned, the reply's first term), then the
	// result. payload, the request's versioned payload, is a slice of a
	// packet that no one else uses; id is valid only during the call.
	// chain is 0, or the callback chain the request runs on; caller is
	// the ETF (no version byte) of the calling process's pid, for the
	// request's log lines, or nil, valid only during the call. It returns
	// ErrClosed for a closed context; any other error is an overloaded
	// queue.
	Submit(op proto.Op, chain int64, id, caller, payload []byte) error
	// SubmitFile is Submit for a payload in a slot: the first size bytes
	// of the file at path. It returns ErrBadSlot for a path that is not
	// absolute or a size that is not positive.
	SubmitFile(op proto.Op, chain int64, id, caller []byte, path string, size int) error
	// CallbackReply gives the BEAM's answer to callback cb (payload: a
	// versioned {ok, Value} or {error, {Class, Reason}}) to the
	// erlang.call waiting for it.
	CallbackReply(cb int64, payload []byte) error
	// DropEnv forgets the environment of the process whose pid is pid
	// (its ETF, no version byte, valid only during the call), if it has
	// one in this context: the process exited.
	DropEnv(pid []byte) error
	// Close frees the context once the requests queued before it ran.
	Close()
}

// Store is the shared state's store (docs/PROTOCOL.md, Shared state):
// keys are byte strings, values terms' encodings without version byte.
type Store interface {
	// Put stores key -> value, copying both.
	Put(key, value []byte) error
	// Get appends key's value to dst; false, and dst unchanged, when
	// there is none.
	Get(key, dst []byte) ([]byte, bool)
	// Delete removes key; false if it was not there.
	Delete(key []byte) bool
	// Incr adds delta to the integer at key (a missing key counts as 0)
	// and returns the new value, or ErrNotInteger or ErrOverflow.
	Incr(key []byte, delta int64) (int64, error)
	// Clear removes every key.
	Clear()
	// Load replaces the whole store with entries, at once, recording
	// nothing in the mirror; on error the store is unchanged.
	Load(entries []proto.StateEntry) error
	// Keys returns the keys, in no order.
	Keys() [][]byte
	// StartMirror sends every later mutation of the store to the port
	// as '$state' packets, each before any packet written after it.
	StartMirror()
}

// Writer writes packets to the port.
type Writer interface {
	// Send writes one packet made of a then b.
	Send(a, b []byte)
	// LogAck: the BEAM handled n '$log' packets ({log_ack, N}), so more
	// may go (port/log.h).
	LogAck(n int64)
	// SendAck: the port owner handled n '$send' packets ({send_ack, N}),
	// whose senders' credits come back (port/log.h).
	SendAck(n int64)
}

// Errors that the seams return for the server to answer.
var (
	// ErrClosed: the context was closed.
	ErrClosed = errors.New("bridge: context closed")
	// ErrBadSlot: a slot without an absolute path or a size.
	ErrBadSlot = errors.New("bridge: a slot needs an absolute path and a size")
	// ErrNotInteger: state_incr on a value that is no integer.
	ErrNotInteger = errors.New("bridge: the value is not an integer")
	// ErrOverflow: state_incr past 64 bits, or on a larger integer.
	ErrOverflow = errors.New("bridge: the integer would not fit 64 bits")
)
