package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"runtime/debug"
	"sync"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/port"
)

// Server reads requests from the port and hands them to the pool, whose
// executors write the replies to out themselves (docs/PROTOCOL.md).
type Server struct {
	pool   *pool.Pool
	frames *FrameReader
	out    *port.Output
	log    *log.Logger

	mu       sync.RWMutex
	contexts map[int64]*pool.Context
}

// NewServer serves requests read from in, replies written to out.
func NewServer(p *pool.Pool, in io.Reader, out *port.Output, maxPacket int, logger *log.Logger) *Server {
	return &Server{
		pool:     p,
		frames:   NewFrameReader(in, maxPacket),
		out:      out,
		log:      logger,
		contexts: make(map[int64]*pool.Context),
	}
}

// Serve runs until the input ends (nil) or cannot be read.
func (s *Server) Serve() error {
	for {
		frame, err := s.frames.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, ErrFrameTooLarge):
			s.tooLarge(err)
			continue
		case err != nil:
			return err
		}
		s.handleSafely(frame)
	}
}

// handleSafely handles one packet; a panic in doing so (a bug, or input
// nobody thought of) is logged and the packet dropped: the port keeps
// serving the others.
func (s *Server) handleSafely(frame []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Printf("error: dropped a packet (%d bytes) that made the sidecar panic: %v\n%s", len(frame), r, debug.Stack())
		}
	}()
	s.handle(frame)
}

// headerDecoder reads headers: small terms, so a compressed one may not
// inflate past 1 MiB (the default allows 256 MiB, for payloads); nesting
// stops at etf.DefaultMaxDepth.
var headerDecoder = etf.Decoder{MaxInflated: 1 << 20}

var (
	atomCall    = etf.Atom("call")
	atomEval    = etf.Atom("eval")
	atomExec    = etf.Atom("exec")
	atomCancel  = etf.Atom("cancel")
	atomCreate  = etf.Atom("create_context")
	atomDestroy = etf.Atom("destroy_context")
	atomCbReply = etf.Atom("cb_reply")
	atomNone    = etf.Atom("none")
	atomInfo    = etf.Atom("info")
)

var ops = map[etf.Atom]pool.Op{atomCall: pool.Call, atomEval: pool.Eval, atomExec: pool.Exec}

// handle reads one request's header and acts on it. It never blocks on
// Python: work goes to the contexts' queues.
func (s *Server) handle(frame []byte) {
	dec := headerDecoder
	head, n, err := dec.DecodePrefix(frame)
	if err != nil {
		if id, ok := headerID(frame); ok {
			s.reply(id, badRequest("the header cannot be read: %v", err))
			return
		}
		s.log.Printf("dropped a packet whose header cannot be read: %v", err)
		return
	}
	h, _ := head.(etf.Tuple)
	if len(h) < 2 {
		s.log.Printf("dropped a packet with header %s", brief(head))
		return
	}
	tag, _ := h[0].(etf.Atom)
	id := h[1]
	if op, ok := ops[tag]; ok && len(h) >= 3 && len(h) <= 5 {
		var slot etf.Term
		var chain int64
		if len(h) >= 4 && h[3] != atomNone {
			slot = h[3]
		}
		if len(h) == 5 {
			if chain, ok = etf.ToInt64(h[4]); !ok || chain <= 0 {
				s.reply(id, badRequest("chain %s is not a positive integer", brief(h[4])))
				return
			}
		}
		s.request(id, op, h[2], frame[n:], slot, chain)
		return
	}
	if op, ok := stateOps[tag]; ok {
		s.state(op, id, h[2:], frame[n:])
		return
	}
	switch {
	case tag == atomCbReply && len(h) == 3:
		s.callbackReply(id, h[2], frame[n:])
	case tag == atomCancel && len(h) == 2:
		s.cancel(id)
	case tag == atomCreate && len(h) == 4:
		go s.createContext(id, h[2], h[3]) // a sub-interpreter takes ~10 ms
	case tag == atomDestroy && len(h) == 3:
		s.destroyContext(id, h[2])
	case tag == atomInfo && len(h) == 2:
		s.reply(id, etf.OKTuple(etf.MapOf(
			etf.Atom("mode"), etf.Atom(s.pool.Mode()),
			etf.Atom("version"), etf.Binary(s.pool.Version()),
			etf.Atom("num_executors"), s.pool.NumExecutors(),
			etf.Atom("subinterp_supported"), s.pool.SubinterpSupported(),
		)))
	default:
		s.reply(id, badRequest("unknown request %s", brief(head)))
	}
}

// tooLarge answers a packet over the limit, when its header can be read,
// with {error, {bad_request, Msg}}, so its caller does not wait for nothing.
func (s *Server) tooLarge(err error) {
	s.log.Printf("dropped a packet: %v", err)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		return
	}
	dec := headerDecoder
	head, _, derr := dec.DecodePrefix(tl.Head)
	id, ok := headerID(tl.Head)
	if h, isTuple := head.(etf.Tuple); derr == nil && isTuple && len(h) >= 2 {
		id, ok = h[1], true
	}
	if ok {
		s.reply(id, badRequest("a packet of %d bytes, over the limit of %d (--max-packet)", tl.Size, tl.Limit))
	}
}

// headerID reads the id of a header that cannot be decoded whole, such
// as {call, Id, Garbage} or one cut short: the second element of a tuple,
// when the first two can be read and the id is one a reply can go to.
func headerID(frame []byte) (etf.Term, bool) {
	if len(frame) < 3 || frame[0] != 131 {
		return nil, false
	}
	var pos int
	switch frame[1] {
	case 104: // SMALL_TUPLE_EXT
		if frame[2] < 2 {
			return nil, false
		}
		pos = 3
	case 105: // LARGE_TUPLE_EXT
		if len(frame) < 6 || binary.BigEndian.Uint32(frame[2:6]) < 2 {
			return nil, false
		}
		pos = 6
	default:
		return nil, false
	}
	dec := headerDecoder
	_, n, err := dec.DecodeTerm(frame[pos:])
	if err != nil {
		return nil, false
	}
	id, _, err := dec.DecodeTerm(frame[pos+n:])
	if err != nil || !isReplyID(id) {
		return nil, false
	}
	return id, true
}

// brief prints t for a message, cut to 200 bytes.
func brief(t etf.Term) string {
	s := fmt.Sprintf("%v", t)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func badRequest(format string, args ...any) etf.Tuple {
	return etf.ErrorTuple(etf.Tuple{etf.Atom("bad_request"), etf.Binary(fmt.Sprintf(format, args...))})
}

func (s *Server) context(ctxID etf.Term) (*pool.Context, bool) {
	n, ok := etf.ToInt64(ctxID)
	if !ok {
		return nil, false
	}
	s.mu.RLock()
	c, ok := s.contexts[n]
	s.mu.RUnlock()
	return c, ok
}

var atomSlot = etf.Atom("slot")

// request queues a call, eval or exec. Its payload follows the header, or,
// when slot is {slot, Path, Size}, it is in that file (docs/PROTOCOL.md).
func (s *Server) request(id etf.Term, op pool.Op, ctxID etf.Term, payload []byte, slot etf.Term, chain int64) {
	if !isRequestID(id) {
		s.reply(id, badRequest("request id %s is not a reference or {nested, Reference}", brief(id)))
		return
	}
	ctx, ok := s.context(ctxID)
	if !ok {
		s.reply(id, etf.ErrorTuple(etf.Tuple{etf.Atom("unknown_context"), ctxID}))
		return
	}
	idBytes, err := etf.Encode(id)
	if err != nil {
		s.log.Printf("dropped a request: %v", err)
		return
	}
	if slot == nil {
		err = ctx.Submit(s.out, op, chain, idBytes, payload)
	} else if t, ok := slot.(etf.Tuple); ok && len(t) == 3 && t[0] == atomSlot {
		path, _ := t[1].(etf.Binary)
		size, _ := etf.ToInt64(t[2])
		err = ctx.SubmitFile(s.out, op, chain, idBytes, string(path), int(size))
	} else {
		err = pool.ErrBadSlot
	}
	switch {
	case err == nil:
	case errors.Is(err, pool.ErrBadSlot):
		s.reply(id, badRequest("slot %s is not {slot, AbsolutePath, Size}", brief(slot)))
	case errors.Is(err, pool.ErrClosed):
		s.reply(id, etf.ErrorTuple(etf.Tuple{etf.Atom("unknown_context"), ctxID}))
	default:
		s.reply(id, etf.ErrorTuple(etf.Tuple{etf.Atom("overloaded"), etf.Atom("queue")}))
	}
}

// callbackReply hands the BEAM's answer to callback cb, {cb_reply, Cb, Ctx}
// followed by the versioned result, to the context that made the call.
// It has no reply of its own: a bad one is logged and dropped.
func (s *Server) callbackReply(cb, ctxID etf.Term, payload []byte) {
	n, ok := etf.ToInt64(cb)
	ctx, found := s.context(ctxID)
	if !ok || !found {
		s.log.Printf("dropped a callback reply for %s on context %s", brief(cb), brief(ctxID))
		return
	}
	if err := ctx.CallbackReply(n, payload); err != nil {
		s.log.Printf("dropped a callback reply for %s on context %s: %v", brief(cb), brief(ctxID), err)
	}
}

var atomNested = etf.Atom("nested")

// isRequestID: a call's id is its caller's alias, or {nested, Alias} for
// a call made by a callback, which holds no py_semaphore slot (the port
// owner must not give one back for its reply).
func isRequestID(id etf.Term) bool {
	if _, ok := id.(etf.Ref); ok {
		return true
	}
	t, ok := id.(etf.Tuple)
	if !ok || len(t) != 2 || t[0] != atomNested {
		return false
	}
	_, ok = t[1].(etf.Ref)
	return ok
}

var atomCtl = etf.Atom("ctl")

// isReplyID: the ids the port owner routes a reply to (docs/PROTOCOL.md):
// a reference, {ctl, Reference} or {nested, Reference}. A reply to any
// other id would be read by the port owner as a call's reply (or a log
// line, or a callback) and is never sent.
func isReplyID(id etf.Term) bool {
	if t, ok := id.(etf.Tuple); ok && len(t) == 2 && t[0] == atomCtl {
		_, ok = t[1].(etf.Ref)
		return ok
	}
	return isRequestID(id)
}

// cancel drops or interrupts the request whose reply goes to id.
func (s *Server) cancel(id etf.Term) {
	if !isRequestID(id) {
		return
	}
	if idBytes, err := etf.Encode(id); err == nil {
		s.pool.Cancel(s.out, idBytes)
	}
}

var kinds = map[etf.Atom]pool.Kind{"auto": pool.Auto, "subinterp": pool.SubInterpreter, "worker": pool.Worker}

func (s *Server) createContext(id, ctxID, kindTerm etf.Term) {
	n, ok := etf.ToInt64(ctxID)
	kindAtom, _ := kindTerm.(etf.Atom)
	kind, kindOK := kinds[kindAtom]
	switch {
	case !ok || n <= 0:
		s.reply(id, badRequest("context id %s is not a positive integer", brief(ctxID)))
		return
	case !kindOK:
		s.reply(id, badRequest("context kind %s is not auto, subinterp or worker", brief(kindTerm)))
		return
	}
	if _, exists := s.context(ctxID); exists {
		s.reply(id, etf.ErrorTuple(etf.Tuple{etf.Atom("context_exists"), ctxID}))
		return
	}
	ctx, err := s.pool.NewContext(kind, n)
	if err != nil {
		s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
		return
	}
	s.mu.Lock()
	s.contexts[n] = ctx
	s.mu.Unlock()
	s.reply(id, etf.OK)
}

func (s *Server) destroyContext(id, ctxID etf.Term) {
	n, _ := etf.ToInt64(ctxID)
	s.mu.Lock()
	ctx, ok := s.contexts[n]
	delete(s.contexts, n)
	s.mu.Unlock()
	if ok {
		ctx.Close()
	}
	s.reply(id, etf.OK)
}

// logTag is the id of a packet for the BEAM's logger rather than a caller.
var logTag = etf.Atom("$log")

// logToBEAM sends {Level, Ctx, Text} to the logger of the BEAM: a
// packet with the id '$log' (docs/PROTOCOL.md).
func (s *Server) logToBEAM(level etf.Atom, ctxID etf.Term, text []byte) {
	s.send(logTag, etf.Tuple{level, ctxID, etf.Binary(text)})
}

// reply sends a result built in Go to a request's id; a result for an id
// that is no reply address (isReplyID) is logged and dropped.
func (s *Server) reply(id, result etf.Term) {
	if !isReplyID(id) {
		s.log.Printf("dropped the answer %s to a request whose id %s is no reply address", brief(result), brief(id))
		return
	}
	s.send(id, result)
}

// send writes one packet made of id and result.
func (s *Server) send(id, result etf.Term) {
	idBytes, err := etf.Encode(id)
	if err != nil {
		s.log.Printf("cannot reply to %v: %v", id, err)
		return
	}
	res, err := etf.Encode(result)
	if err != nil {
		s.log.Printf("cannot encode a reply to %v: %v", id, err)
		return
	}
	s.out.Send(idBytes, res)
}
