// Package proto is the wire protocol between the erlang_python
// application and pyport, on the Go side (docs/PROTOCOL.md): the
// protocol's version, the atoms that tag packets, the decoding of request
// headers and the packets that Go builds (replies, bad_request, '$exit',
// the info reply). Replies that executors write come from C; '$log'
// packets too. It is pure Go, with no cgo.
//
// A packet is External Term Format: a versioned header term, then, for
// some requests, a versioned payload term. A reply is the versioned id of
// the request, then the versioned result.
package proto

import (
	"strconv"

	"github.com/erlang-python/erlang_python/etf"
)

// Version is the protocol's version, sent in the info reply as
// protocol => Version. It goes up by one with each change that a port
// owner of the previous version would misread (a packet, a header, a
// reply or a meaning that changes); the Erlang side refuses a pyport of
// another version.
const Version = 4

// Request tags: the first element of a request's header.
const (
	TagCall           etf.Atom = "call"
	TagEval           etf.Atom = "eval"
	TagExec           etf.Atom = "exec"
	TagTask           etf.Atom = "task" // {task, Id, Ctx, ...}: a call whose awaitable result runs on the context's loop
	TagCancel         etf.Atom = "cancel"
	TagCreateContext  etf.Atom = "create_context"
	TagDestroyContext etf.Atom = "destroy_context"
	TagCbReply        etf.Atom = "cb_reply"
	TagInfo           etf.Atom = "info"
	TagStateStore     etf.Atom = "state_store"
	TagStateFetch     etf.Atom = "state_fetch"
	TagStateRemove    etf.Atom = "state_remove"
	TagStateKeys      etf.Atom = "state_keys"
	TagStateClear     etf.Atom = "state_clear"
	TagStateIncr      etf.Atom = "state_incr"
	TagStateLoad      etf.Atom = "state_load"
	TagLogAck         etf.Atom = "log_ack"  // {log_ack, N}: N '$log' packets handled
	TagSendAck        etf.Atom = "send_ack" // {send_ack, N}: N '$send' packets handled
	TagDown           etf.Atom = "down"     // {down, [Ctx]} + Pid: a watched process exited (DecodeDown)
)

// Ids of the packets that pyport sends on its own, which answer no
// request: the first term of the packet, where a reply has its id.
const (
	IDLog      etf.Atom = "$log"   // {[{Level, Dropped}], [{Level, Ctx, Caller, Text}]}, for the logger (built in C)
	IDExit     etf.Atom = "$exit"  // why pyport exits, just before it does
	IDState    etf.Atom = "$state" // the shared state's mirror: [Op]
	IDCallback etf.Atom = "$cb"    // {'$cb', N}: erlang.call from Python
	IDSend     etf.Atom = "$send"  // erlang.send from Python
)

// Other atoms of the protocol.
const (
	AtomNested         etf.Atom = "nested" // {nested, Alias}: a request made by a callback
	AtomCtl            etf.Atom = "ctl"    // {ctl, Alias}: a control request
	AtomCast           etf.Atom = "cast"   // {cast, Ref}: a call whose reply only the port owner reads (py:cast)
	AtomSlot           etf.Atom = "slot"   // {slot, Path, Size}
	AtomStuck          etf.Atom = "stuck"  // '$exit' {stuck, Ctx, GraceMs}
	AtomBadRequest     etf.Atom = "bad_request"
	AtomUnknownContext etf.Atom = "unknown_context"
	AtomContextExists  etf.Atom = "context_exists"
	AtomOverloaded     etf.Atom = "overloaded"
	AtomQueue          etf.Atom = "queue"
	AtomNotFound       etf.Atom = "not_found"
	AtomNotInteger     etf.Atom = "not_integer"
	AtomOverflow       etf.Atom = "overflow"
)

// Op is a request that runs Python: call, eval or exec.
type Op int

// The ops. The zero Op is none of them.
const (
	Call Op = iota + 1 // {call, Id, Ctx, ...}: {Module, Function, Args, Kwargs}
	Eval               // {eval, Id, Ctx}: {Code, Locals}
	Exec               // {exec, Id, Ctx}: {Code}
	Task               // {task, Id, Ctx, ...}: as Call; an awaitable result becomes a task, answered when it ends
)

// OpOf returns the op that a header's tag names, if it names one.
func OpOf(tag etf.Atom) (Op, bool) {
	switch tag {
	case TagCall:
		return Call, true
	case TagEval:
		return Eval, true
	case TagExec:
		return Exec, true
	case TagTask:
		return Task, true
	}
	return 0, false
}

// String returns the op's tag.
func (o Op) String() string {
	switch o {
	case Call:
		return string(TagCall)
	case Eval:
		return string(TagEval)
	case Exec:
		return string(TagExec)
	case Task:
		return string(TagTask)
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ContextKind is a create_context's Kind: where the context runs.
type ContextKind int

// The kinds of context.
const (
	// Auto: an own-GIL sub-interpreter in subinterp mode, else a
	// namespace on one of the shared executors.
	Auto ContextKind = iota
	// SubInterp insists on an own-GIL sub-interpreter.
	SubInterp
	// Worker runs in the main interpreter, where extensions that refuse
	// sub-interpreters import.
	Worker
)

// KindOf returns the kind that an atom names: auto, subinterp or worker.
func KindOf(a etf.Atom) (ContextKind, bool) {
	switch a {
	case "auto":
		return Auto, true
	case "subinterp":
		return SubInterp, true
	case "worker":
		return Worker, true
	}
	return 0, false
}

// String returns the kind's atom.
func (k ContextKind) String() string {
	switch k {
	case Auto:
		return "auto"
	case SubInterp:
		return "subinterp"
	case Worker:
		return "worker"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}
