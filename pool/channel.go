package pool

/*
#include "channel.h"
*/
import "C"

import (
	_ "embed" // py/channel.py
	"errors"

	"github.com/erlang-python/erlang_python/port"
)

// The channels (docs/channels.md): a table in C (channel.c), shared by
// every context of the sidecar; Python receives with erlang.Channel,
// erlang.ByteChannel and erlang.PyBuffer (py/channel.py).

//go:embed py/channel.py
var channelPy string

// Channel kinds: terms (py_channel) or raw bytes (py_byte_channel,
// py_buffer).
const (
	ChanTerms = int(C.PYX_CHAN_TERM)
	ChanBytes = int(C.PYX_CHAN_BYTES)
)

// Errors of ChanOpen.
var (
	ErrChanExists  = errors.New("pool: the channel exists")
	ErrChanTooMany = errors.New("pool: too many channels")
)

// ChanOpen opens channel id of kind, whose receivers acknowledge what
// they take to out (max: its bound in bytes, for the batching of those).
func ChanOpen(out *port.Output, id int64, kind int, max int64) error {
	switch C.pyx_chan_open(cOut(out), C.longlong(id), C.int(kind), C.longlong(max)) {
	case C.PYX_CHAN_OK:
		return nil
	case C.PYX_CHAN_EXISTS:
		return ErrChanExists
	case C.PYX_CHAN_TOO_MANY:
		return ErrChanTooMany
	}
	return errors.New("pool: out of memory")
}

// ChanPush queues a copy of data on channel id; a closed or unknown
// channel drops it.
func ChanPush(id int64, data []byte) {
	C.pyx_chan_push(C.longlong(id), bytesPtr(data), C.size_t(len(data)))
}

// ChanClose closes channel id; with drop, what it holds goes too.
func ChanClose(id int64, drop bool) {
	d := 0
	if drop {
		d = 1
	}
	C.pyx_chan_close(C.longlong(id), C.int(d))
}
