package pool

/*
#include <stdlib.h>
#include "output.h"
*/
import "C"

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// Output is where replies go: {packet, 4} frames on a file descriptor.
// Executors write their results to it themselves, in C, so a request
// never comes back through Go; Go code writes to it with Send. Writers
// that arrive while another writes are batched into one write(2).
type Output struct {
	c *C.pyx_out
	f *os.File // keeps the descriptor open
}

// NewOutput writes to f, which it puts in blocking mode. An Output lives
// as long as the process: executors may hold it.
func NewOutput(f *os.File) (*Output, error) {
	fd := f.Fd() // blocking mode from here on
	c := C.pyx_out_new(C.int(fd), 256<<10)
	if c == nil {
		return nil, errors.New("pool: out of memory")
	}
	return &Output{c: c, f: f}, nil
}

// Send writes one frame made of a then b.
func (o *Output) Send(a, b []byte) {
	C.pyx_out_send(o.c, bytesPtr(a), C.size_t(len(a)), bytesPtr(b), C.size_t(len(b)))
}

// MirrorState makes o the Output of the shared state's mirror (on), or
// stops the mirror (off, dropping what is buffered): every mutation of
// the store is then sent to o as a '$state' packet, before any frame
// written after it (docs/PROTOCOL.md, "Shared state"). One Output at a
// time: turning it on for o turns it off for the previous one.
func (o *Output) MirrorState(on bool) {
	var c C.int
	if on {
		c = 1
	}
	C.pyx_out_mirror(o.c, c)
}

// Err is the first write error, nil if none.
func (o *Output) Err() error {
	if e := C.pyx_out_error(o.c); e != 0 {
		return syscall.Errno(e)
	}
	return nil
}

// bytesPtr is b's data for a C call that does not keep it.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
