package proto

import (
	"errors"
	"fmt"

	"github.com/erlang-python/erlang_python/etf"
)

// StateOp is a request on the shared state (docs/PROTOCOL.md, Shared
// state), answered by the sidecar's reader at once.
type StateOp int

// The state requests, {Tag, Id, Args...}.
const (
	StateStore  StateOp = iota + 1 // {state_store, Id, Key}, then the value
	StateFetch                     // {state_fetch, Id, Key}
	StateRemove                    // {state_remove, Id, Key}
	StateKeys                      // {state_keys, Id}
	StateClear                     // {state_clear, Id}
	StateIncr                      // {state_incr, Id, Key, N}
	StateLoad                      // {state_load, Id}, then [{Key, Value}]
)

// StateOpOf returns the state request that a header's tag names, if it
// names one.
func StateOpOf(tag etf.Atom) (StateOp, bool) {
	switch tag {
	case TagStateStore:
		return StateStore, true
	case TagStateFetch:
		return StateFetch, true
	case TagStateRemove:
		return StateRemove, true
	case TagStateKeys:
		return StateKeys, true
	case TagStateClear:
		return StateClear, true
	case TagStateIncr:
		return StateIncr, true
	case TagStateLoad:
		return StateLoad, true
	}
	return 0, false
}

// Args is the number of the request's header elements after the id.
func (o StateOp) Args() int {
	switch o {
	case StateStore, StateFetch, StateRemove:
		return 1
	case StateIncr:
		return 2
	}
	return 0
}

// StoredValue returns the value of a state_store, its payload without the
// version byte, stored as it is; false when the payload is not a
// versioned, uncompressed encoding. The term is not read.
func StoredValue(payload []byte) ([]byte, bool) {
	if len(payload) < 2 || payload[0] != etf.VersionTag || payload[1] == etf.TagCompressed {
		return nil, false
	}
	return payload[1:], true
}

// StateEntry is one key of a state_load and its value's encoding (no
// version byte), both slices of the payload.
type StateEntry struct {
	Key, Value []byte
}

// DecodeStateEntries reads state_load's payload, term_to_binary([{Key,
// Value}]) with binary keys, uncompressed, without decoding the values:
// each is the span of its encoding.
func DecodeStateEntries(payload []byte) ([]StateEntry, error) {
	b, ok := StoredValue(payload) // versioned, uncompressed
	if !ok {
		return nil, errors.New("the payload is not term_to_binary([{Key, Value}]), uncompressed")
	}
	if len(b) == 1 && b[0] == etf.TagNil { // []
		return nil, nil
	}
	count, n, err := etf.ListHeader(b)
	if err != nil {
		return nil, errors.New("the payload is not a list")
	}
	b = b[n:]
	if uint64(count) > uint64(len(b)/8) { // {<<>>, V} takes 8 bytes at least
		return nil, errors.New("a list longer than the payload")
	}
	entries := make([]StateEntry, 0, count)
	var dec etf.Decoder
	for i := range count {
		arity, n, err := etf.TupleHeader(b)
		if err != nil || arity != 2 {
			return nil, fmt.Errorf("element %d is not {Key, Value} with a binary key", i+1)
		}
		key, kn, err := dec.DecodeTerm(b[n:])
		k, isBinary := key.(etf.Binary)
		if err != nil || !isBinary || len(b) <= n+kn {
			if err == nil && isBinary {
				return nil, fmt.Errorf("element %d: no value", i+1)
			}
			return nil, fmt.Errorf("element %d is not {Key, Value} with a binary key", i+1)
		}
		b = b[n+kn:]
		vn, err := dec.Skip(b)
		if err != nil {
			return nil, fmt.Errorf("element %d: %v", i+1, err)
		}
		entries = append(entries, StateEntry{Key: k, Value: b[:vn:vn]})
		b = b[vn:]
	}
	if len(b) != 1 || b[0] != etf.TagNil {
		return nil, errors.New("not a proper list")
	}
	return entries, nil
}
