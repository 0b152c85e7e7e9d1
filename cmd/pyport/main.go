// Command pyport is the sidecar the erlang_python application runs as a
// port: it reads External Term Format packets ({packet, 4}) on stdin, runs
// them in embedded Python and writes replies on stdout
// (docs/PROTOCOL.md).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/proto"
	"github.com/erlang-python/erlang_python/pyetf"
)

const version = "0.1.0"

// defaultExecutable is sys.executable, set at build time by
// scripts/build-pyport.sh (-ldflags -X) to the Python linked in. The BEAM
// passes --python-executable when that Python sits elsewhere at run time
// (py_python, docs/deployment.md).
var defaultExecutable = ""

func main() {
	echo := pflag.Bool("echo", false, "echo every term back, re-encoded (codec and framing check)")
	showVersion := pflag.Bool("version", false, "print the version and exit")
	showInfo := pflag.Bool("info", false, "write the info reply's result ({ok, #{mode, version, ...}}) as one {packet, 4} frame of ETF on stdout and exit, without starting Python")
	maxPacket := pflag.Int("max-packet", bridge.DefaultMaxFrame, "largest packet accepted, in bytes")
	pythonPath := pflag.StringArray("python-path", nil, "directory prepended to sys.path (repeatable)")
	numExecutors := pflag.Int("num-executors", pool.DefaultNumExecutors, "shared executor threads in multi_executor mode")
	executable := pflag.String("python-executable", defaultExecutable, "sys.executable of the embedded Python")
	spin := pflag.Int("spin-us", pool.DefaultSpinMicros, "microseconds an idle context polls for work before it sleeps")
	busySpin := pflag.Int("busy-spin-us", pool.DefaultBusySpinMicros, "--spin-us for a context under load (requests left waiting in its queue lately)")
	readSpin := pflag.Int("read-spin-us", 100, "microseconds the reader polls stdin for the next request before it sleeps")
	slotDir := pflag.String("slot-dir", "", "the port owner's slot directory (docs/PROTOCOL.md), removed when pyport exits")
	pipeSize := pflag.Int("pipe-size", 1<<20, "pipe buffer asked for stdin and stdout, in bytes (0: keep the kernel's)")
	maxMemory := pflag.Int("max-memory-mb", 0, "cap on the address space (RLIMIT_AS), in MiB (0: none)")
	maxAtoms := pflag.Int64("max-atoms", 10000, "new atoms Python may make: erlang.Atom raises erlang.AtomLimitError past it (the BEAM's count, py_atoms, is the guarantee)")
	sendPace := pflag.Int64("send-pace", port.DefaultSendPace, "erlang.sends a second while other contexts are served (0: never paced): a send loop cannot take the pipe and the port owner from their replies")
	noneAs := pflag.String("none-as", "none", "the atom Python's None becomes: none (as the NIF) or nil (Elixir apps)")
	stuckGrace := pflag.Int("stuck-grace-ms", int(pool.DefaultStuckGrace/time.Millisecond), "exit (status 70) when a cancelled request still runs this long after its cancel (0: never)")
	pflag.Parse()
	restoreLibraryPath()

	logger := log.New(os.Stderr, "pyport: ", log.LstdFlags|log.Lmicroseconds)
	growPipe(0, *pipeSize)
	growPipe(1, *pipeSize)
	switch {
	case *showVersion:
		fmt.Println("pyport", version)
	case *showInfo:
		if err := writeInfo(os.Stdout, *numExecutors); err != nil {
			logger.Fatal(err)
		}
	case *echo:
		// The same reader as the sidecar's, so the echo stays the floor.
		in, err := bridge.NewPollReader(0, time.Duration(*readSpin)*time.Microsecond)
		if err != nil {
			logger.Fatal(err)
		}
		if err := runEcho(in, os.Stdout, *maxPacket); err != nil {
			logger.Fatal(err)
		}
	default:
		// Before Python starts: the memory cap, the parent's death,
		// our own process group; from here on every exit is l.exit.
		l := startLifecycle(logger, *slotDir, *maxMemory)
		fatal := func(err error) { l.exit(exitFatal, err.Error()) }
		proto, err := privateStdout()
		if err != nil {
			fatal(err)
		}
		stdin, err := privateStdin()
		if err != nil {
			fatal(err)
		}
		logs, err := redirectStdio()
		if err != nil {
			fatal(err)
		}
		logger = log.New(logs, "", 0) // to the BEAM's logger
		l.logger = logger
		var out atomic.Pointer[port.Output]
		pyetf.SetMaxAtoms(*maxAtoms)
		switch *noneAs {
		case "none", "nil":
			pyetf.SetNoneAsNil(*noneAs == "nil")
		default:
			fatal(fmt.Errorf("--none-as %q: none or nil", *noneAs))
		}
		p, err := pool.Start(pool.Config{
			PythonPath:     *pythonPath,
			NumExecutors:   *numExecutors,
			Executable:     *executable,
			SpinMicros:     *spin,
			BusySpinMicros: *busySpin,
			StuckGrace:     time.Duration(*stuckGrace) * time.Millisecond,
			OnStuck:        l.onStuck(out.Load),
		})
		if err != nil {
			fatal(err)
		}
		o, err := port.NewOutput(proto)
		if err != nil {
			fatal(err)
		}
		o.SetSendPace(*sendPace)
		out.Store(o)
		logs.attach(o)
		in, err := bridge.NewPollReader(stdin, time.Duration(*readSpin)*time.Microsecond)
		if err != nil {
			fatal(err)
		}
		err = newServer(p, o, in, *maxPacket, logger).Serve()
		if err != nil {
			logger.Print(err)
		}
		// Never finalise Python (PLATFORM.md): leave at once.
		l.exit(exitEOF, "end of input")
	}
}

// buildInfo is what the info request would report, known from the build
// alone: the library asks it before the application starts
// (py:execution_mode/0 and friends).
func buildInfo(numExecutors int) proto.Info {
	if numExecutors <= 0 {
		numExecutors = pool.DefaultNumExecutors
	}
	mode := pool.BuildMode()
	return proto.Info{
		Mode:               string(mode),
		PythonVersion:      pool.BuildVersion(),
		NumExecutors:       numExecutors,
		SubinterpSupported: mode == pool.SubInterp,
		SlotMin:            pool.SlotMin,
	}
}

// writeInfo writes buildInfo's info result as one {packet, 4} frame.
func writeInfo(w io.Writer, numExecutors int) error {
	buf, err := etf.Encode(proto.InfoResult(buildInfo(numExecutors)))
	if err != nil {
		return err
	}
	_, err = w.Write(append(bridge.AppendFrameHeader(nil, len(buf)), buf...))
	return err
}

// privateStdout keeps the protocol's stdout for us alone: it returns a
// duplicate of fd 1 and points fd 1 at stderr, so a print() in Python or a
// write(1, ...) in C lands in stderr instead of corrupting the packets.
func privateStdout() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("dup stdout: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, fmt.Errorf("point stdout at stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol"), nil
}

// removeSlotDir removes the slot directory when the BEAM is gone: a BEAM
// that halts does not stop the application, so the port owner cannot.
// Only a directory named as py_slot names them is removed.
func removeSlotDir(dir string, logger *log.Logger) {
	if dir == "" || !filepath.IsAbs(dir) || !strings.HasPrefix(filepath.Base(dir), "erlang_python-") {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		logger.Printf("slot directory: %v", err)
	}
}

// privateStdin keeps the protocol's stdin for us alone: it returns a
// duplicate of fd 0 and points fd 0 at /dev/null, so Python code or a
// subprocess reading stdin gets end-of-file instead of our requests.
func privateStdin() (int, error) {
	fd, err := syscall.Dup(0)
	if err != nil {
		return -1, fmt.Errorf("dup stdin: %w", err)
	}
	syscall.CloseOnExec(fd)
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/null: %w", err)
	}
	defer syscall.Close(null)
	if err := syscall.Dup3(null, 0, 0); err != nil {
		return -1, fmt.Errorf("point stdin at /dev/null: %w", err)
	}
	return fd, nil
}

// runEcho answers each packet with its term re-encoded by our codec, or
// {etf_error, Message} when it is not a term, until stdin ends.
func runEcho(in io.Reader, out io.Writer, maxPacket int) error {
	frames := bridge.NewFrameReader(in, maxPacket)
	w := bufio.NewWriterSize(out, 64<<10)
	var buf []byte
	for {
		frame, err := frames.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, bridge.ErrFrameTooLarge):
			buf, _ = etf.Encode(etf.Tuple{etf.Atom("etf_error"), etf.Binary(err.Error())})
		case err != nil:
			return err
		default:
			buf = echoReply(frame)
		}
		if _, err := w.Write(bridge.AppendFrameHeader(nil, len(buf))); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if frames.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func echoReply(frame []byte) []byte {
	t, err := etf.Decode(frame)
	if err == nil {
		var out []byte
		if out, err = etf.Encode(t); err == nil {
			return out
		}
	}
	out, _ := etf.Encode(etf.Tuple{etf.Atom("etf_error"), etf.Binary(err.Error())})
	return out
}
