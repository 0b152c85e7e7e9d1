package bridge

import (
	"errors"
	"fmt"
	"io"
	"log"
	"runtime/debug"
	"sync"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// Server reads requests from the port and hands them to the pool, whose
// executors write the replies to the port themselves (docs/PROTOCOL.md).
type Server struct {
	pool   Pool
	store  Store
	frames *FrameReader
	out    Writer
	log    *log.Logger
	idBuf  []byte // the reader's scratch: a request's versioned id

	mu       sync.RWMutex
	contexts map[int64]Context
}

// NewServer serves requests read from in, with the pool p and the store
// st; the packets built in Go go to out.
func NewServer(p Pool, st Store, in io.Reader, out Writer, maxPacket int, logger *log.Logger) *Server {
	return &Server{
		pool:     p,
		store:    st,
		frames:   NewFrameReader(in, maxPacket),
		out:      out,
		log:      logger,
		contexts: make(map[int64]Context),
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

// handle reads one request's header and acts on it. It never blocks on
// Python: work goes to the contexts' queues.
func (s *Server) handle(frame []byte) {
	h, err := proto.DecodeHeader(frame)
	if err != nil {
		var nh *proto.NotHeaderError
		switch {
		case errors.As(err, &nh):
			s.log.Printf("dropped a packet with header %s", brief(nh.Term))
		default:
			if id, ok := proto.HeaderID(frame); ok {
				s.reply(id, proto.BadRequest("the header cannot be read: %v", err))
				return
			}
			s.log.Printf("dropped a packet whose header cannot be read: %v", err)
		}
		return
	}
	body := frame[h.Len:]
	elems, id := h.Elems, h.ID
	if op, ok := proto.OpOf(h.Tag); ok && len(elems) >= 3 && len(elems) <= 6 {
		var slot etf.Term
		var chain int64
		if len(elems) >= 4 && elems[3] != etf.None {
			slot = elems[3]
		}
		if len(elems) == 6 && h.RawCaller == nil {
			if _, ok := elems[5].(etf.Pid); !ok {
				s.reply(id, proto.BadRequest("caller %s is not a pid", brief(elems[5])))
				return
			}
		}
		if len(elems) >= 5 && elems[4] != etf.None {
			if chain, ok = etf.ToInt64(elems[4]); !ok || chain <= 0 {
				s.reply(id, proto.BadRequest("chain %s is not a positive integer", brief(elems[4])))
				return
			}
		}
		s.request(&h, op, elems[2], body, slot, chain)
		return
	}
	if s.channel(&h, body) { // bridge/channel.go
		return
	}
	if op, ok := proto.StateOpOf(h.Tag); ok {
		s.state(op, id, h.Args(), body)
		return
	}
	switch {
	case h.Tag == proto.TagCbReply && len(elems) == 3:
		s.callbackReply(id, elems[2], body)
	case h.Tag == proto.TagCancel && len(elems) == 2:
		s.cancel(&h)
	case h.Tag == proto.TagCreateContext && len(elems) == 4:
		go s.createContext(id, elems[2], elems[3]) // a sub-interpreter takes ~10 ms
	case h.Tag == proto.TagDestroyContext && len(elems) == 3:
		s.destroyContext(id, elems[2])
	case h.Tag == proto.TagLogAck && len(elems) == 2:
		if n, ok := etf.ToInt64(elems[1]); ok && n > 0 {
			s.out.LogAck(n)
		}
	case h.Tag == proto.TagSendAck && len(elems) == 2:
		if n, ok := etf.ToInt64(elems[1]); ok && n > 0 {
			s.out.SendAck(n)
		}
	case h.Tag == proto.TagDown && len(elems) == 2:
		s.down(elems[1], body)
	case h.Tag == proto.TagInfo && len(elems) == 2:
		s.reply(id, proto.InfoResult(s.pool.Info()))
	case h.Tag == proto.TagAtomsLoad && len(elems) == 2:
		s.atomsLoad(id, body)
	default:
		s.reply(id, proto.BadRequest("unknown request %s", brief(elems)))
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
	var id etf.Term
	h, err := proto.DecodeHeader(tl.Head)
	ok := err == nil
	if ok {
		id = h.ID
	} else {
		id, ok = proto.HeaderID(tl.Head) // the id of a broken header
	}
	if ok {
		s.reply(id, proto.BadRequest("a packet of %d bytes, over the limit of %d (--max-packet)", tl.Size, tl.Limit))
	}
}

// brief prints t for a message, cut to 200 bytes.
func brief(t etf.Term) string {
	s := fmt.Sprintf("%v", t)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (s *Server) context(ctxID etf.Term) (Context, bool) {
	n, ok := etf.ToInt64(ctxID)
	if !ok {
		return nil, false
	}
	s.mu.RLock()
	c, ok := s.contexts[n]
	s.mu.RUnlock()
	return c, ok
}

// request queues a call, eval or exec. Its payload follows the header, or,
// when slot is {slot, Path, Size}, it is in that file (docs/PROTOCOL.md).
func (s *Server) request(h *proto.Header, op proto.Op, ctxID etf.Term, payload []byte, slot etf.Term, chain int64) {
	id := h.ID
	if !proto.IsRequestID(id) {
		s.reply(id, proto.BadRequest("request id %s is not a reference, {nested, Reference} or {cast, Reference}", brief(id)))
		return
	}
	ctx, ok := s.context(ctxID)
	if !ok {
		s.reply(id, proto.UnknownContext(ctxID))
		return
	}
	idBytes, err := h.AppendID(s.idBuf[:0])
	if err != nil {
		s.log.Printf("dropped a request: %v", err)
		return
	}
	s.idBuf = idBytes
	if slot == nil {
		err = ctx.Submit(op, chain, idBytes, h.RawCaller, payload)
	} else if t, ok := slot.(etf.Tuple); ok && len(t) == 3 && t[0] == proto.AtomSlot {
		path, _ := t[1].(etf.Binary)
		size, _ := etf.ToInt64(t[2])
		err = ctx.SubmitFile(op, chain, idBytes, h.RawCaller, string(path), int(size))
	} else {
		err = ErrBadSlot
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrBadSlot):
		s.reply(id, proto.BadRequest("slot %s is not {slot, AbsolutePath, Size}", brief(slot)))
	case errors.Is(err, ErrClosed):
		s.reply(id, proto.UnknownContext(ctxID))
	default:
		s.reply(id, proto.Overloaded())
	}
}

// down: a process the BEAM watched for the sidecar exited, {down, Ctxs}
// then its pid. Its environments in Ctxs go. No reply: a bad one is
// logged and dropped.
func (s *Server) down(ctxs etf.Term, body []byte) {
	ids, pid, err := proto.DecodeDown(ctxs, body)
	if err != nil {
		s.log.Printf("dropped a down packet: %v", err)
		return
	}
	s.pool.Exited(pid)
	for _, id := range ids {
		if ctx, ok := s.context(id); ok {
			_ = ctx.DropEnv(pid) // a closed context took its environments along
		}
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

// cancel drops or interrupts the request whose reply goes to the id of
// {cancel, Id}.
func (s *Server) cancel(h *proto.Header) {
	if !proto.IsRequestID(h.ID) {
		return
	}
	if idBytes, err := h.AppendID(s.idBuf[:0]); err == nil {
		s.idBuf = idBytes
		s.pool.Cancel(idBytes)
	}
}

func (s *Server) createContext(id, ctxID, kindTerm etf.Term) {
	n, ok := etf.ToInt64(ctxID)
	kindAtom, _ := kindTerm.(etf.Atom)
	kind, kindOK := proto.KindOf(kindAtom)
	switch {
	case !ok || n <= 0:
		s.reply(id, proto.BadRequest("context id %s is not a positive integer", brief(ctxID)))
		return
	case !kindOK:
		s.reply(id, proto.BadRequest("context kind %s is not auto, subinterp or worker", brief(kindTerm)))
		return
	}
	if _, exists := s.context(ctxID); exists {
		s.reply(id, proto.ContextExists(ctxID))
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

// reply sends a result built in Go to a request's id; a result for an id
// that is no reply address (proto.IsReplyID) is logged and dropped.
func (s *Server) reply(id, result etf.Term) {
	if !s.replyAddress(id, result) {
		return
	}
	pkt, err := proto.AppendPacket(nil, id, result)
	if err != nil {
		s.log.Printf("cannot reply to %v: %v", id, err)
		return
	}
	s.out.Send(pkt, nil)
}

// replyAddress: whether id is one a reply can go to; if not, the answer
// (result, for the log) is logged as dropped.
func (s *Server) replyAddress(id, result etf.Term) bool {
	if proto.IsReplyID(id) {
		return true
	}
	s.log.Printf("dropped the answer %s to a request whose id %s is no reply address", brief(result), brief(id))
	return false
}
