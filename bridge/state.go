package bridge

import (
	"errors"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// The shared state (docs/PROTOCOL.md, "Shared state"): Erlang's side of
// the store that Python reaches as erlang.state_*. Each request is done
// here, in the reader goroutine, at once: the store is C behind mutexes
// that Python holds only for pointer work, so nothing waits for Python.

// state does one request; args are the header's elements after the id,
// payload what follows the header (state_store's value, versioned).
func (s *Server) state(op proto.StateOp, id etf.Term, args []etf.Term, payload []byte) {
	if len(args) != op.Args() {
		s.reply(id, proto.BadRequest("a state request with %d arguments, not %d", len(args), op.Args()))
		return
	}
	var key etf.Binary
	if len(args) > 0 {
		var ok bool
		if key, ok = args[0].(etf.Binary); !ok {
			s.reply(id, proto.BadRequest("state key %v is not a binary", args[0]))
			return
		}
	}
	switch op {
	case proto.StateStore:
		value, ok := proto.StoredValue(payload)
		if !ok {
			s.reply(id, proto.BadRequest("state_store needs the value, term_to_binary/1 of it, after the header"))
			return
		}
		if err := s.store.Put(key, value); err != nil {
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
			return
		}
		s.reply(id, etf.OK)
	case proto.StateFetch:
		// the reply, id then {ok, Value}, built in one buffer that the
		// store appends the value to, as stored (never copied again)
		if !s.replyAddress(id, etf.Atom("state_fetch")) {
			return
		}
		head, err := etf.Encode(id)
		if err != nil {
			s.log.Printf("cannot reply to %v: %v", id, err)
			return
		}
		pkt, ok := s.store.Get(key, proto.AppendOKPrefix(head))
		if !ok {
			s.reply(id, etf.ErrorTuple(proto.AtomNotFound))
			return
		}
		s.out.Send(pkt, nil)
	case proto.StateRemove:
		s.store.Delete(key)
		s.reply(id, etf.OK)
	case proto.StateKeys:
		keys := s.store.Keys()
		list := make(etf.List, len(keys))
		for i, k := range keys {
			list[i] = etf.Binary(k)
		}
		s.reply(id, list)
	case proto.StateClear:
		s.store.Clear()
		s.reply(id, etf.OK)
	case proto.StateLoad:
		entries, err := proto.DecodeStateEntries(payload)
		if err != nil {
			s.reply(id, proto.BadRequest("state_load: %v", err))
			return
		}
		if err := s.store.Load(entries); err != nil {
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
			return
		}
		// from now on every mutation goes to the BEAM's mirror
		s.store.StartMirror()
		s.reply(id, etf.OK)
	case proto.StateIncr:
		delta, ok := etf.ToInt64(args[1])
		if !ok {
			s.reply(id, proto.BadRequest("state_incr by %v, not a 64-bit integer", args[1]))
			return
		}
		n, err := s.store.Incr(key, delta)
		switch {
		case err == nil:
			s.reply(id, etf.OKTuple(n))
		case errors.Is(err, ErrNotInteger):
			s.reply(id, etf.ErrorTuple(etf.Tuple{proto.AtomNotInteger, key}))
		case errors.Is(err, ErrOverflow):
			s.reply(id, etf.ErrorTuple(etf.Tuple{proto.AtomOverflow, key}))
		default:
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
		}
	}
}
