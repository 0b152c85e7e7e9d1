// Package port writes the sidecar's side of the port: {packet, 4} frames
// on a file descriptor, written by Go and, without entering Go, by the C
// of the packages above it (the executors' replies, the shared state's
// mirror, Python's log lines). Its C (output.h, buf.h, etfw.h, log.h) is
// the bottom layer of the sidecar's C: it calls nothing above it, and
// other packages hook into the writer (pyx_out_set_hook) rather than the
// writer calling them.
package port

/*
#include <stdlib.h>
#include "output.h"
#include "log.h"
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
		return nil, errors.New("port: out of memory")
	}
	return &Output{c: c, f: f}, nil
}

// Send writes one frame made of a then b.
func (o *Output) Send(a, b []byte) {
	C.pyx_out_send(o.c, bytesPtr(a), C.size_t(len(a)), bytesPtr(b), C.size_t(len(b)))
}

// The Ctx of a log packet that comes from no context: the atom
// undefined, or the atom sidecar for pyport's own lines.
const (
	LogNoContext = int64(C.PYX_LOG_NO_CTX)
	LogSidecar   = int64(C.PYX_LOG_SIDECAR)
)

// Log logs a line for the BEAM's logger (docs/PROTOCOL.md, "Log
// packets") through the same C as Python's log lines, batched with them
// and, past the bound of log.h, dropped and counted: level is an atom's
// name (at most 255 bytes), ctx a context id (> 0), LogNoContext or
// LogSidecar. The caller is undefined.
func (o *Output) Log(level string, ctx int64, line []byte) {
	lv := C.CString(level)
	defer C.free(unsafe.Pointer(lv))
	C.pyx_out_log(o.c, lv, C.longlong(ctx), nil, 0, bytesPtr(line), C.size_t(len(line)))
}

// LogAck is the BEAM's {log_ack, N}: n log packets were handled, so the
// batch waiting (or the counts of lines dropped) goes out (log.h).
func (o *Output) LogAck(n int64) { C.pyx_out_log_ack(o.c, C.longlong(n)) }

// LogDropped is the number of log lines dropped so far.
func (o *Output) LogDropped() uint64 { return uint64(C.pyx_out_log_dropped(o.c)) }

// SendAck is the BEAM's {send_ack, N}: the port owner handled n '$send'
// packets, whose credits come back (output.h).
func (o *Output) SendAck(n int64) { C.pyx_out_send_ack(o.c, C.longlong(n)) }

// SendOneway is erlang.send's path (output.h): entry, {Dest, Message}
// without version byte, joins the batch of sends.
func (o *Output) SendOneway(entry []byte) {
	C.pyx_out_send_oneway(o.c, bytesPtr(entry), C.size_t(len(entry)), nil)
}

// SetSendPace sets the share of erlang.sends while other threads are
// served (output.h): perSecond sends a second at most, 0 for no pace.
func (o *Output) SetSendPace(perSecond int64) { C.pyx_out_set_send_pace(o.c, C.longlong(perSecond)) }

// SendPaced is the number of sends after which their sender waited for
// the pace, so far.
func (o *Output) SendPaced() uint64 { return uint64(C.pyx_out_send_paced(o.c)) }

// DefaultSendPace is the pace of a new Output, in sends a second.
const DefaultSendPace = int64(C.PYX_SEND_PACE_DEFAULT)

// Err is the first write error, nil if none.
func (o *Output) Err() error {
	if e := C.pyx_out_error(o.c); e != 0 {
		return syscall.Errno(e)
	}
	return nil
}

// C is the writer's C object, a pyx_out * (output.h), for the C of the
// packages above port.
func (o *Output) C() unsafe.Pointer { return unsafe.Pointer(o.c) }

// bytesPtr is b's data for a C call that does not keep it.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
