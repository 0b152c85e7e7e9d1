package bridge

import (
	"io"
	"syscall"
	"time"
	"unsafe"
)

// PollReader reads a file descriptor that it puts in non-blocking mode.
// When nothing is there it keeps trying for spin, yielding the CPU at each
// turn, and only then sleeps in poll(2). While it polls, the writer (the
// BEAM) finds it awake: the write wakes nobody, and a request is read
// without a thread wake-up, which costs tens of microseconds on these
// machines.
type PollReader struct {
	fd   int
	spin time.Duration
}

// NewPollReader reads fd (not closed by it), polling for spin before
// sleeping (0: never polls).
func NewPollReader(fd int, spin time.Duration) (*PollReader, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return &PollReader{fd: fd, spin: spin}, nil
}

func (r *PollReader) Read(p []byte) (int, error) {
	var until time.Time
	for {
		n, err := syscall.Read(r.fd, p)
		switch {
		case n > 0:
			return n, nil
		case n == 0 && err == nil:
			return 0, io.EOF
		case err == syscall.EINTR:
			continue
		case err != syscall.EAGAIN:
			return 0, err
		}
		if r.spin > 0 {
			now := time.Now()
			if until.IsZero() {
				until = now.Add(r.spin)
			}
			if now.Before(until) {
				_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
				continue
			}
		}
		if err := waitReadable(r.fd); err != nil {
			return 0, err
		}
	}
}

// waitReadable sleeps in poll(2) until fd has data, or its writer is gone.
func waitReadable(fd int) error {
	type pollFd struct {
		fd      int32
		events  int16
		revents int16
	}
	const pollIn = 0x1
	pfd := pollFd{fd: int32(fd), events: pollIn}
	for {
		_, _, errno := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, ^uintptr(0))
		if errno == 0 || errno != syscall.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}
