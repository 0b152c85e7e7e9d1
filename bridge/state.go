package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/store"
)

// The shared state (docs/PROTOCOL.md, "Shared state"): Erlang's side of
// the store that Python reaches as erlang.state_*. Each request is done
// here, in the reader goroutine, at once: the store is C behind mutexes
// that Python holds only for pointer work, so nothing waits for Python.

type stateOp int

const (
	stateStore stateOp = iota
	stateFetch
	stateRemove
	stateKeys
	stateClear
	stateIncr
	stateLoad
)

// stateOps: the requests' tags.
var stateOps = map[etf.Atom]stateOp{
	"state_store":  stateStore,
	"state_fetch":  stateFetch,
	"state_remove": stateRemove,
	"state_keys":   stateKeys,
	"state_clear":  stateClear,
	"state_incr":   stateIncr,
	"state_load":   stateLoad,
}

// stateArgs: the number of header elements after the id, {Tag, Id, Args...}.
var stateArgs = map[stateOp]int{stateStore: 1, stateFetch: 1, stateRemove: 1, stateKeys: 0, stateClear: 0, stateIncr: 2, stateLoad: 0}

var (
	atomNotFound   = etf.Atom("not_found")
	atomNotInteger = etf.Atom("not_integer")
	atomOverflow   = etf.Atom("overflow")
	// okPrefix is {ok, _} up to its second element, versioned.
	okPrefix = []byte{131, 104, 2, 119, 2, 'o', 'k'}
)

// state does one request; args are the header's elements after the id,
// payload what follows the header (state_store's value, versioned).
func (s *Server) state(op stateOp, id etf.Term, args []etf.Term, payload []byte) {
	if len(args) != stateArgs[op] {
		s.reply(id, badRequest("a state request with %d arguments, not %d", len(args), stateArgs[op]))
		return
	}
	var key etf.Binary
	if len(args) > 0 {
		var ok bool
		if key, ok = args[0].(etf.Binary); !ok {
			s.reply(id, badRequest("state key %v is not a binary", args[0]))
			return
		}
	}
	switch op {
	case stateStore:
		// the value, without decoding it: versioned, not compressed
		if len(payload) < 2 || payload[0] != 131 || payload[1] == 80 {
			s.reply(id, badRequest("state_store needs the value, term_to_binary/1 of it, after the header"))
			return
		}
		if err := store.Put(key, payload[1:]); err != nil {
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
			return
		}
		s.reply(id, etf.OK)
	case stateFetch:
		res, ok := store.Get(key, okPrefix[:len(okPrefix):len(okPrefix)])
		if !ok {
			s.reply(id, etf.ErrorTuple(atomNotFound))
			return
		}
		s.replyRaw(id, res)
	case stateRemove:
		store.Delete(key)
		s.reply(id, etf.OK)
	case stateKeys:
		keys := store.Keys()
		list := make(etf.List, len(keys))
		for i, k := range keys {
			list[i] = etf.Binary(k)
		}
		s.reply(id, list)
	case stateClear:
		store.Clear()
		s.reply(id, etf.OK)
	case stateLoad:
		entries, err := loadEntries(payload)
		if err != nil {
			s.reply(id, badRequest("state_load: %v", err))
			return
		}
		if err := store.Load(entries); err != nil {
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
			return
		}
		// from now on every mutation goes to the BEAM's mirror
		store.Mirror(s.out, true)
		s.reply(id, etf.OK)
	case stateIncr:
		delta, ok := etf.ToInt64(args[1])
		if !ok {
			s.reply(id, badRequest("state_incr by %v, not a 64-bit integer", args[1]))
			return
		}
		n, err := store.Incr(key, delta)
		switch {
		case err == nil:
			s.reply(id, etf.OKTuple(n))
		case errors.Is(err, store.ErrNotInteger):
			s.reply(id, etf.ErrorTuple(etf.Tuple{atomNotInteger, key}))
		case errors.Is(err, store.ErrOverflow):
			s.reply(id, etf.ErrorTuple(etf.Tuple{atomOverflow, key}))
		default:
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
		}
	}
}

// replyRaw sends a result already encoded (versioned).
func (s *Server) replyRaw(id etf.Term, result []byte) {
	idBytes, err := etf.Encode(id)
	if err != nil {
		s.log.Printf("cannot reply to %v: %v", id, err)
		return
	}
	s.out.Send(idBytes, result)
}

// loadEntries reads state_load's payload, term_to_binary([{Key, Value}])
// with binary keys, without decoding the values: each is the slice of its
// encoding.
func loadEntries(payload []byte) ([]store.Entry, error) {
	if len(payload) < 2 || payload[0] != 131 {
		return nil, errors.New("the payload is not term_to_binary([{Key, Value}]), uncompressed")
	}
	b := payload[1:]
	if b[0] == 106 && len(b) == 1 { // []
		return nil, nil
	}
	if b[0] != 108 || len(b) < 6 {
		return nil, errors.New("the payload is not a list")
	}
	count := binary.BigEndian.Uint32(b[1:])
	b = b[5:]
	if uint64(count) > uint64(len(b)/8) {
		return nil, errors.New("a list longer than the payload")
	}
	entries := make([]store.Entry, 0, count)
	var dec etf.Decoder
	for i := uint32(0); i < count; i++ {
		if len(b) < 7 || b[0] != 104 || b[1] != 2 || b[2] != 109 {
			return nil, fmt.Errorf("element %d is not {Key, Value} with a binary key", i+1)
		}
		klen := binary.BigEndian.Uint32(b[3:])
		if uint64(klen) > uint64(len(b)-7) {
			return nil, fmt.Errorf("element %d: truncated", i+1)
		}
		key := b[7 : 7+klen]
		b = b[7+klen:]
		if len(b) == 0 {
			return nil, fmt.Errorf("element %d: no value", i+1)
		}
		_, n, err := dec.DecodeTerm(b)
		if err != nil {
			return nil, fmt.Errorf("element %d: %v", i+1, err)
		}
		entries = append(entries, store.Entry{Key: key, Value: b[:n]})
		b = b[n:]
	}
	if len(b) != 1 || b[0] != 106 {
		return nil, errors.New("not a proper list")
	}
	return entries, nil
}
