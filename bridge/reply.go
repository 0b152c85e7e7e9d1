package bridge

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
)

// ReplyWriter writes reply packets from many goroutines. Writers that
// arrive while another writes are batched: only the last one out flushes,
// so a burst of replies costs one write system call.
type ReplyWriter struct {
	mu      sync.Mutex
	w       *bufio.Writer
	pending atomic.Int32
	err     error
}

// NewReplyWriter writes to w.
func NewReplyWriter(w io.Writer) *ReplyWriter {
	return &ReplyWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// Send writes one packet made of the given parts, in order. The parts are
// copied or written out before it returns. After a write error it drops
// everything: the BEAM is gone.
func (r *ReplyWriter) Send(parts ...[]byte) {
	r.pending.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var hdr [4]byte
	r.write(AppendFrameHeader(hdr[:0], n))
	for _, p := range parts {
		r.write(p)
	}
	if r.pending.Add(-1) == 0 && r.err == nil {
		r.err = r.w.Flush()
	}
}

func (r *ReplyWriter) write(p []byte) {
	if r.err == nil {
		_, r.err = r.w.Write(p)
	}
}
