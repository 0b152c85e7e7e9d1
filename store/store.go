// Package store is the shared state (API.md section 7): one store in the
// process, key -> term, seen by every context's Python (erlang.state_*,
// package pool) and by Erlang through these functions, and its mirror:
// every mutation sent to the BEAM as a '$state' packet before any frame
// written after it.
//
// Keys are byte strings; values are terms as their ETF encoding without
// the version byte. Every call is atomic and never waits for Python: the
// store is C (store.h) behind mutexes that are held only for pointer
// work. It works before Python starts too.
package store

/*
#cgo CFLAGS: -I${SRCDIR}/../port
#include <stdlib.h>
#include "store.h"
#include "mirror.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
)

// ErrNotInteger: incr on a value that is not an integer.
var ErrNotInteger = errors.New("store: the value is not an integer")

// ErrOverflow: incr past 64 bits, or on an integer that is larger.
var ErrOverflow = errors.New("store: the integer would not fit 64 bits")

var errMemory = errors.New("store: out of memory")

func storeError(rc C.int) error {
	switch rc {
	case C.PYX_STATE_OK:
		return nil
	case C.PYX_STATE_NOT_INTEGER:
		return ErrNotInteger
	case C.PYX_STATE_OVERFLOW:
		return ErrOverflow
	}
	return errMemory
}

// Put stores key -> the term whose encoding (no version byte) is
// value; value is copied.
func Put(key, value []byte) error {
	v := C.pyx_state_val_copy(bytesPtr(value), C.size_t(len(value)))
	if v == nil {
		return errMemory
	}
	return storeError(C.pyx_state_put(bytesPtr(key), C.size_t(len(key)), v))
}

// Get appends the encoding (no version byte) of key's value to dst;
// false, and dst unchanged, when there is none.
func Get(key, dst []byte) ([]byte, bool) {
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

// Delete removes key; false if it was not there.
func Delete(key []byte) bool {
	return C.pyx_state_delete(bytesPtr(key), C.size_t(len(key))) == C.PYX_STATE_OK
}

// Incr adds delta to the integer at key (a missing key counts as 0)
// and returns the new value; ErrNotInteger or ErrOverflow leave
// the value as it was.
func Incr(key []byte, delta int64) (int64, error) {
	var r C.longlong
	if err := storeError(C.pyx_state_incr(bytesPtr(key), C.size_t(len(key)), C.longlong(delta), &r)); err != nil {
		return 0, err
	}
	return int64(r), nil
}

// Clear removes every key.
func Clear() { C.pyx_state_clear() }

// Entry is one key and its value's encoding (no version byte).
type Entry struct {
	Key, Value []byte
}

// ErrBadEntry: Load of a key or value over 4 GiB.
var ErrBadEntry = errors.New("store: a state entry too large")

// Load replaces the whole store, at once, with entries (a key given
// twice keeps its last value). It records nothing in the mirror: it is
// how a new sidecar gets the mirror's contents back. On error the store
// is unchanged.
func Load(entries []Entry) error {
	size := 0
	for _, e := range entries {
		if uint64(len(e.Key)) > math.MaxUint32 || uint64(len(e.Value)) > math.MaxUint32 {
			return ErrBadEntry
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
		return ErrBadEntry // cannot happen: flat is well formed
	}
	return storeError(rc)
}

// Keys returns the keys, in no particular order.
func Keys() [][]byte {
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

// Mirror makes o the Output of the mirror (on), or stops the mirror (off,
// dropping what is buffered): every mutation of the store is then sent to
// o as a '$state' packet, before any frame written after it
// (docs/PROTOCOL.md, "Shared state"), from o's pre-frame hook. One Output
// at a time: turning it on for o turns it off for the previous one.
func Mirror(o *port.Output, on bool) {
	var c C.int
	if on {
		c = 1
	}
	C.pyx_mirror_to((*C.pyx_out)(o.C()), c)
}

// bytesPtr is b's data for a C call that does not keep it.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
