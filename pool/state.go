package pool

/*
#include <stdlib.h>
#include "state.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"

	"github.com/erlang-python/erlang_python/etf"
)

// The shared state (state.c, API.md section 7): one store in the process,
// key -> term, seen by every context's Python (erlang.state_*) and by
// Erlang through these functions. Keys are byte strings; values are terms
// as their ETF encoding without the version byte. Every call is atomic and
// never waits for Python: the store is C behind mutexes that Python code
// holds only for pointer work. They work before Start too.

// ErrStateNotInteger: incr on a value that is not an integer.
var ErrStateNotInteger = errors.New("pool: the value is not an integer")

// ErrStateOverflow: incr past 64 bits, or on an integer that is larger.
var ErrStateOverflow = errors.New("pool: the integer would not fit 64 bits")

var errStateMemory = errors.New("pool: out of memory")

func stateError(rc C.int) error {
	switch rc {
	case C.PYX_STATE_OK:
		return nil
	case C.PYX_STATE_NOT_INTEGER:
		return ErrStateNotInteger
	case C.PYX_STATE_OVERFLOW:
		return ErrStateOverflow
	}
	return errStateMemory
}

// StatePut stores key -> the term whose encoding (no version byte) is
// value; value is copied.
func StatePut(key, value []byte) error {
	v := C.pyx_state_val_copy(bytesPtr(value), C.size_t(len(value)))
	if v == nil {
		return errStateMemory
	}
	return stateError(C.pyx_state_put(bytesPtr(key), C.size_t(len(key)), v))
}

// StateGet appends the encoding (no version byte) of key's value to dst;
// false, and dst unchanged, when there is none.
func StateGet(key, dst []byte) ([]byte, bool) {
	var v *C.pyx_state_val
	var n C.longlong
	if C.pyx_state_get(bytesPtr(key), C.size_t(len(key)), &v, &n) != C.PYX_STATE_OK {
		return dst, false
	}
	if v == nil {
		dst, _ = etf.AppendTerm(dst, int64(n)) // an int64 always encodes
		return dst, true
	}
	dst = append(dst, unsafe.Slice((*byte)(unsafe.Pointer(v.data)), int(v.len))...)
	C.pyx_state_val_release(v)
	return dst, true
}

// StateDelete removes key; false if it was not there.
func StateDelete(key []byte) bool {
	return C.pyx_state_delete(bytesPtr(key), C.size_t(len(key))) == C.PYX_STATE_OK
}

// StateIncr adds delta to the integer at key (a missing key counts as 0)
// and returns the new value; ErrStateNotInteger or ErrStateOverflow leave
// the value as it was.
func StateIncr(key []byte, delta int64) (int64, error) {
	var r C.longlong
	if err := stateError(C.pyx_state_incr(bytesPtr(key), C.size_t(len(key)), C.longlong(delta), &r)); err != nil {
		return 0, err
	}
	return int64(r), nil
}

// StateClear removes every key.
func StateClear() { C.pyx_state_clear() }

// StateEntry is one key and its value's encoding (no version byte).
type StateEntry struct {
	Key, Value []byte
}

// ErrStateBadEntry: StateLoad of a key or value over 4 GiB.
var ErrStateBadEntry = errors.New("pool: a state entry too large")

// StateLoad replaces the whole store, at once, with entries (a key given
// twice keeps its last value). It records nothing in the mirror: it is
// how a new sidecar gets the mirror's contents back. On error the store
// is unchanged.
func StateLoad(entries []StateEntry) error {
	size := 0
	for _, e := range entries {
		if uint64(len(e.Key)) > math.MaxUint32 || uint64(len(e.Value)) > math.MaxUint32 {
			return ErrStateBadEntry
		}
		size += 8 + len(e.Key) + len(e.Value)
	}
	flat := make([]byte, 0, size)
	for _, e := range entries {
		flat = binary.NativeEndian.AppendUint32(flat, uint32(len(e.Key))) // read by C
		flat = append(flat, e.Key...)
		flat = binary.NativeEndian.AppendUint32(flat, uint32(len(e.Value)))
		flat = append(flat, e.Value...)
	}
	rc := C.pyx_state_load((*C.uchar)(bytesPtr(flat)), C.size_t(len(flat)))
	if rc == C.PYX_STATE_NOT_FOUND {
		return ErrStateBadEntry // cannot happen: flat is well formed
	}
	return stateError(rc)
}

// StateKeys returns the keys, in no particular order.
func StateKeys() [][]byte {
	var buf *C.uchar
	var size C.size_t
	count := C.pyx_state_keys(&buf, &size)
	if count <= 0 {
		C.free(unsafe.Pointer(buf))
		return [][]byte{}
	}
	b := C.GoBytes(unsafe.Pointer(buf), C.int(size))
	C.free(unsafe.Pointer(buf))
	keys := make([][]byte, 0, int(count))
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint32(b)) // from C
		keys = append(keys, b[4:4+n:4+n])
		b = b[4+n:]
	}
	return keys
}
