// Package bridge connects the port (the BEAM's side of stdin and stdout)
// to the Python pool: it frames packets, routes requests and writes
// replies.
package bridge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// DefaultMaxFrame is the largest packet accepted unless told otherwise.
const DefaultMaxFrame = 512 << 20

// ErrFrameTooLarge is returned for a packet over the reader's limit; the
// packet has been skipped, so the stream is still in step. The error is a
// *TooLargeError.
var ErrFrameTooLarge = errors.New("bridge: packet over the size limit")

// TooLargeError is a packet over the limit, with its first bytes (up to
// headLen), enough to read a request's header and answer it.
type TooLargeError struct {
	Size, Limit int
	Head        []byte
}

const headLen = 4096

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%v: %d bytes, limit %d", ErrFrameTooLarge, e.Size, e.Limit)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// FrameReader reads {packet, 4} frames: a 4-byte big-endian length, then
// that many bytes.
type FrameReader struct {
	r   *bufio.Reader
	max int
}

// NewFrameReader reads frames from r, refusing any over max bytes
// (DefaultMaxFrame when max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next frame in a new slice that the caller owns, so
// terms decoded from it may alias it. It returns io.EOF at a clean end of
// stream and io.ErrUnexpectedEOF inside a frame.
func (f *FrameReader) Next() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(f.max) {
		head := make([]byte, min(int(n), headLen))
		if _, err := io.ReadFull(f.r, head); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if _, err := f.r.Discard(int(n) - len(head)); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, &TooLargeError{Size: int(n), Limit: f.max, Head: head}
	}
	if n > eagerLen {
		return f.grow(int(n))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// eagerLen: a frame up to this size is allocated whole from its length;
// a larger one grows as its bytes come, so a length field that lies (a
// stream out of step) costs no more memory than the bytes really sent.
const eagerLen = 1 << 20

func (f *FrameReader) grow(n int) ([]byte, error) {
	buf := make([]byte, 0, eagerLen)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, 2*cap(buf))-len(buf))
		}
		m, err := f.r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// AppendFrameHeader appends the 4-byte length of a payload of n bytes.
func AppendFrameHeader(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// Buffered reports how many bytes are read ahead, so a writer can flush
// only when no request is waiting.
func (f *FrameReader) Buffered() int { return f.r.Buffered() }
