package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/erlang-python/erlang_python/port"
)

// beamLog sends the sidecar's own lines to the BEAM's logger as '$log'
// packets {Level, sidecar, Text} (docs/PROTOCOL.md, "Log packets"): the
// output of C code and subprocesses on fd 1 and fd 2, and the Go logger's
// messages. Until the output exists (start-up), and for the crash output
// of a dying process, lines go to the original stderr instead.
type beamLog struct {
	out   atomic.Pointer[port.Output]
	crash *os.File // the original stderr
}

// The levels of fd 1 and fd 2 (notice: shown by the BEAM's default
// logger configuration, like print), and of a logger message without one.
const (
	levelNotice  = "notice"
	levelWarning = "warning"
)

// attach sends lines to out from now on.
func (l *beamLog) attach(out *port.Output) { l.out.Store(out) }

func (l *beamLog) send(level string, text []byte) {
	out := l.out.Load()
	if out == nil {
		fmt.Fprintf(l.crash, "pyport: %s: %s\n", level, text)
		return
	}
	out.Log(level, port.LogSidecar, text)
}

// levelPrefixes: a logger message that starts with one of these goes at
// that level (without the prefix); any other at warning.
var levelPrefixes = []string{"debug", "info", "notice", "warning", "error", "critical"}

// Write is the Go logger's output: one message per call.
func (l *beamLog) Write(p []byte) (int, error) {
	text := bytes.TrimSuffix(p, []byte("\n"))
	level := levelWarning
	for _, lv := range levelPrefixes {
		if rest, ok := bytes.CutPrefix(text, []byte(lv+": ")); ok {
			level, text = lv, rest
			break
		}
	}
	l.send(level, text)
	return len(p), nil
}

// maxLine is the longest line sent whole; a longer one goes in pieces.
const maxLine = 8 << 10

// forward sends each line read from r at level until r ends.
func (l *beamLog) forward(r io.Reader, level string) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.send(level, bytes.TrimSuffix(line, []byte("\n")))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// redirectStdio points fd 1 and fd 2 at pipes whose lines go to the
// BEAM's logger, at notice and warning. Call it after privateStdout, before
// Python starts. Go's crash output (fatal errors, unhandled panics) goes
// also to a duplicate of the original stderr (runtime/debug.SetCrashOutput),
// since the goroutines that read the pipes do not run in a dying process.
// What C code or Python writes to fd 2 as the process dies (an abort()'s
// message, Py_FatalError, glibc's heap checks) is lost when the process
// ends before a goroutine read it.
func redirectStdio() (*beamLog, error) {
	fd, err := syscall.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("dup stderr: %w", err)
	}
	syscall.CloseOnExec(fd)
	l := &beamLog{crash: os.NewFile(uintptr(fd), "stderr")}
	if err := debug.SetCrashOutput(l.crash, debug.CrashOptions{}); err != nil {
		return nil, fmt.Errorf("crash output: %w", err)
	}
	for _, s := range []struct {
		fd    int
		level string
	}{{1, levelNotice}, {2, levelWarning}} {
		r, w, err := os.Pipe() // both close-on-exec; fd s.fd is inherited
		if err != nil {
			return nil, fmt.Errorf("log pipe: %w", err)
		}
		if err := syscall.Dup3(int(w.Fd()), s.fd, 0); err != nil {
			return nil, fmt.Errorf("point fd %d at the log pipe: %w", s.fd, err)
		}
		w.Close()
		go l.forward(r, s.level)
	}
	return l, nil
}
