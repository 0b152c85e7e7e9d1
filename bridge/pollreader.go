package bridge

/*
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

// Waits until fd is readable (or its writer is gone): polls for spin_ns,
// yielding the CPU at each turn, then sleeps in poll(2). In C, so that the
// polling does not keep the Go scheduler's monitor busy. Returns 0 or an
// errno. No Go memory, no GIL.
static int wait_readable(int fd, long long spin_ns)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int n = poll(&p, 1, 0);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return errno;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) >= spin_ns)
            break;
        sched_yield();
    }
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return errno;
    }
}
*/
import "C"

import (
	"io"
	"syscall"
	"time"
)

// PollReader reads a file descriptor that it puts in non-blocking mode.
// When nothing is there it keeps looking for spin, yielding the CPU at each
// turn, and only then sleeps in poll(2). While it looks, the writer (the
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
		if errno := C.wait_readable(C.int(r.fd), C.longlong(r.spin.Nanoseconds())); errno != 0 {
			return 0, syscall.Errno(errno)
		}
	}
}
