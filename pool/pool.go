// Package pool runs Python: CPython embedded with cgo, one executor (an
// OS thread with its own thread state) per context in subinterp mode, each
// with its own interpreter and GIL; executors shared by contexts in the
// main interpreter for worker contexts and older Pythons.
//
// Requests and results are versioned ETF: the pool converts them to and
// from Python objects in C (package pyetf), in one cgo crossing per
// request, and its executors write the replies to a port.Output in C.
//
// Its C, above that of port, store and pyetf: interp.h (interpreters and
// contexts), run.h (one request), queue.h, exec.h (the executor loop),
// current.h (the request running on this thread), erlmod.h and
// erlmod_state.h (the `erlang` module), pylog.h (sys.stdout and
// sys.stderr), pysrc.h (the Python source in py/), wait.h (the wait that
// a cancel ends) with sleep.h (time.sleep) and lock.h (threading.Lock,
// which Condition.wait waits on), stream.h (what py/stream.py, the
// helpers of py:stream, needs of a context).
package pool

/*
#cgo CFLAGS: -I${SRCDIR}/../port -I${SRCDIR}/../pyetf -I${SRCDIR}/../store
#include <stdlib.h>
#include "alive.h"
#include "exec.h"
#include "interp.h"
#include "loop.h"
#include "pysrc.h"
#include "run.h"
*/
import "C"

import (
	_ "embed" // the Python source in py/
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/pyetf"
	_ "github.com/erlang-python/erlang_python/store" // its C: erlang.state_* use the store
)

// Mode is the execution mode of the Python the sidecar was built with.
type Mode string

const (
	SubInterp     Mode = "subinterp"
	MultiExecutor Mode = "multi_executor"
	FreeThreaded  Mode = "free_threaded"
)

// Op is a kind of request.
type Op int

const (
	Call Op = C.PYX_CALL
	Eval Op = C.PYX_EVAL
	Exec Op = C.PYX_EXEC
	Task Op = C.PYX_TASK // a Call whose awaitable result runs on the context's loop (loop.h)
)

// Kind says where a context runs.
type Kind int

const (
	// Auto: an own-GIL sub-interpreter in subinterp mode, else a
	// namespace on one of the shared executors.
	Auto Kind = iota
	// SubInterpreter insists on an own-GIL sub-interpreter.
	SubInterpreter
	// Worker runs in the main interpreter, where extensions that refuse
	// sub-interpreters (numpy, torch...) import.
	Worker
)

// Config is fixed at Start.
type Config struct {
	PythonPath   []string // prepended to sys.path in every interpreter
	NumExecutors int      // shared executors (multi_executor mode)
	Executable   string   // sys.executable; empty lets Python guess
	QueueLen     int      // requests waiting per executor
	SpinMicros   int      // an idle executor polls this long before it sleeps
	// BusySpinMicros replaces SpinMicros while the executor is under load
	// (requests left waiting in its queue lately; queue.h).
	BusySpinMicros int
	// StuckGrace, if positive, starts the stuck watchdog: when a request
	// cancelled while it ran still runs StuckGrace after the cancel (C
	// code ignores KeyboardInterrupt until it returns to bytecode),
	// OnStuck is called once, with the request's context id, from a
	// goroutine of the pool's. It is meant to end the process.
	StuckGrace time.Duration
	OnStuck    func(ctx int64, grace time.Duration)
}

// Defaults of Config, and of pyport's flags (cmd/pyport).
const (
	DefaultNumExecutors   = 4    // Config.NumExecutors when not positive
	DefaultQueueLen       = 1024 // Config.QueueLen when not positive
	DefaultSpinMicros     = 100
	DefaultBusySpinMicros = 20
	DefaultStuckGrace     = 2000 * time.Millisecond
)

// SlotMin is the size from which the result of a request that came in a
// slot goes back through the slot (docs/PROTOCOL.md): PYX_SLOT_MIN.
const SlotMin = int(C.PYX_SLOT_MIN)

// The Python source run in every interpreter, handed to C once.
var (
	//go:embed py/erlang.py
	erlangPy string
	//go:embed py/boot.py
	bootPy string
	//go:embed py/logstream.py
	logstreamPy string
	//go:embed py/stream.py
	streamPy string
	//go:embed py/loop.py
	loopPy string
)

// setSources gives C the Python source (pysrc.h); never freed.
func setSources() {
	for _, s := range []struct {
		which      C.int
		name, text string
	}{
		{C.PYX_PY_TERMS, "erlang/terms.py", pyetf.TermsPy},
		{C.PYX_PY_ERLANG, "erlang/erlang.py", erlangPy},
		{C.PYX_PY_BOOT, "erlang/boot.py", bootPy},
		{C.PYX_PY_LOGSTREAM, "erlang/logstream.py", logstreamPy},
		{C.PYX_PY_STREAM, "erlang/stream.py", streamPy},
		{C.PYX_PY_CHANNEL, "erlang/channel.py", channelPy},
		{C.PYX_PY_LOOP, "erlang/loop.py", loopPy},
	} {
		C.pyx_py_set(s.which, C.CString(s.name), C.CString(s.text))
	}
}

// ErrQueueFull: the executor already has QueueLen requests waiting.
var ErrQueueFull = errors.New("pool: context queue full")

// Pool owns the Python runtime. There is one per process.
type Pool struct {
	cfg    Config
	mode   Mode
	paths  *C.char
	seq    atomic.Int64
	mu     sync.Mutex
	shared []*executor // multi_executor's executors, made on first use
	next   int
	allMu  sync.Mutex
	all    map[*executor]struct{} // every running executor, for Cancel
	live   map[*executor]struct{} // every executor whose loop runs, for the watchdog
	poke   chan struct{}          // Cancel found a request running: the watchdog looks
}

var started atomic.Bool

// Start initialises Python. It can be called once per process.
func Start(cfg Config) (*Pool, error) {
	if !started.CompareAndSwap(false, true) {
		return nil, errors.New("pool: Python is already initialised")
	}
	if cfg.NumExecutors <= 0 {
		cfg.NumExecutors = DefaultNumExecutors
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	p := &Pool{cfg: cfg, paths: C.CString(strings.Join(cfg.PythonPath, "\n")), all: make(map[*executor]struct{}),
		live: make(map[*executor]struct{}), poke: make(chan struct{}, 1)}
	p.mode = BuildMode()
	setSources()
	exe := C.CString(cfg.Executable)
	defer C.free(unsafe.Pointer(exe))
	errc := make(chan error)
	go func() {
		// Python's main thread: it initialises, drops the GIL and
		// stays parked, so its thread state never changes threads.
		runtime.LockOSThread()
		errc <- cError(C.pyx_init_main(p.paths, exe))
		select {}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	if cfg.StuckGrace > 0 && cfg.OnStuck != nil {
		go p.watch()
	}
	return p, nil
}

// watch is the stuck watchdog. It sleeps until Cancel interrupts a
// running request, then looks every quarter of the grace (at most 250 ms)
// until no cancelled request runs any more, or one has run for the grace
// since its cancel: then it calls OnStuck. Requests that are not
// cancelled cost it nothing.
func (p *Pool) watch() {
	grace := p.cfg.StuckGrace
	tick := min(max(grace/4, 5*time.Millisecond), 250*time.Millisecond)
	for range p.poke {
		for pending := true; pending; {
			time.Sleep(tick)
			pending = false
			p.allMu.Lock()
			queues := make([]*C.pyx_queue, 0, len(p.live))
			for e := range p.live {
				queues = append(queues, e.queue)
			}
			p.allMu.Unlock()
			for _, q := range queues { // a queue is never freed
				var ctx C.longlong
				switch C.pyx_queue_stuck(q, C.longlong(grace.Nanoseconds()), &ctx) {
				case 1:
					p.cfg.OnStuck(int64(ctx), grace)
					return
				case 0:
					pending = true
				}
			}
		}
	}
}

// BuildMode is the execution mode of the Python this program is built
// for, known without starting Python.
func BuildMode() Mode {
	switch C.pyx_mode() {
	case C.PYX_SUBINTERP:
		return SubInterp
	case C.PYX_FREE_THREADED:
		return FreeThreaded
	default:
		return MultiExecutor
	}
}

// BuildVersion is the version string of the Python linked in, read
// without starting it (Py_GetVersion may be called before Py_Initialize).
func BuildVersion() string { return C.GoString(C.pyx_version()) }

// Mode is the execution mode.
func (p *Pool) Mode() Mode { return p.mode }

// NumExecutors is the number of shared executors.
func (p *Pool) NumExecutors() int { return p.cfg.NumExecutors }

// Version is Python's version string.
func (p *Pool) Version() string { return C.GoString(C.pyx_version()) }

// Exited forgets the process whose pid's ETF (no version byte) is pid
// as one erlang.send knows alive (alive.h): the BEAM said it exited.
func (p *Pool) Exited(pid []byte) {
	if len(pid) > 0 {
		C.pyx_alive_forget(bytesPtr(pid), C.size_t(len(pid)))
	}
}

// SubinterpSupported reports whether own-GIL sub-interpreters are used.
func (p *Pool) SubinterpSupported() bool { return p.mode == SubInterp }

// executor is one locked OS thread running one thread state. It waits for
// jobs, runs them and writes their replies in C (exec.c).
type executor struct {
	c     *C.pyx_exec
	queue *C.pyx_queue
}

// queueError turns pyx_queue_push's status into an error.
func queueError(rc C.int) error {
	switch rc {
	case C.PYX_QUEUE_OK:
		return nil
	case C.PYX_QUEUE_FULL:
		return ErrQueueFull
	case C.PYX_QUEUE_CLOSED:
		return ErrClosed
	}
	return errors.New("pool: out of memory")
}

// push queues a Go job, run on the executor's thread, without blocking.
func (e *executor) push(job func()) error {
	h := cgo.NewHandle(job)
	err := queueError(C.pyx_queue_go(e.queue, C.uintptr_t(h)))
	if err != nil {
		h.Delete()
	}
	return err
}

func (p *Pool) newExecutor(ownInterp bool) (*executor, error) {
	e := &executor{queue: C.pyx_queue_new(C.size_t(p.cfg.QueueLen))}
	if e.queue == nil {
		return nil, errors.New("pool: out of memory")
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // for the executor's whole life
		var cerr *C.char
		e.c = C.pyx_exec_new(cBool(ownInterp), p.paths, &cerr)
		if e.c == nil {
			errc <- cError(cerr)
			return
		}
		p.allMu.Lock()
		p.all[e] = struct{}{}
		p.live[e] = struct{}{}
		p.allMu.Unlock()
		errc <- nil
		// One cgo call for the executor's whole life: until its queue
		// is closed and drained (the queue stays allocated).
		C.pyx_exec_loop(e.queue, C.longlong(p.cfg.SpinMicros*1000), C.longlong(p.cfg.BusySpinMicros*1000))
		p.allMu.Lock()
		delete(p.live, e)
		p.allMu.Unlock()
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return e, nil
}

// Context is one Python namespace with its own __main__.
type Context struct {
	pool   *Pool
	ex     *executor
	own    bool // the executor is this context's alone
	id     int64
	c      *C.pyx_ctx
	mu     sync.RWMutex // Submit holds it shared, Close exclusive
	closed bool
}

// NewContext creates a context of the given kind, numbered id for the BEAM
// (its callbacks and log packets say which context they come from). It
// blocks until the context is ready (a sub-interpreter takes about 10 ms).
// The traceback of each Python exception a request returns goes to the
// BEAM's logger, in C, as a '$log' packet {info, Id, Text} written before
// the reply.
func (p *Pool) NewContext(kind Kind, id int64) (*Context, error) {
	ex, own, err := p.executorFor(kind)
	if err != nil {
		return nil, err
	}
	ctx := &Context{pool: p, ex: ex, own: own, id: id}
	errc := make(chan error, 1)
	job := func() {
		var cerr *C.char
		ctx.c = C.pyx_ctx_new(ex.c, C.longlong(id), &cerr)
		if ctx.c == nil {
			errc <- cError(cerr)
			return
		}
		errc <- nil
	}
	if err := ex.push(job); err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	return ctx, nil
}

// executorFor returns the executor for a new context, and whether it is
// the context's alone.
func (p *Pool) executorFor(kind Kind) (*executor, bool, error) {
	switch {
	case kind == SubInterpreter && p.mode != SubInterp:
		return nil, false, fmt.Errorf("pool: sub-interpreters need Python 3.12+ with a GIL (mode %s)", p.mode)
	case p.mode == SubInterp && kind != Worker:
		e, err := p.newExecutor(true)
		return e, true, err
	case kind == Worker || p.mode == FreeThreaded:
		e, err := p.newExecutor(false)
		return e, true, err
	}
	// multi_executor: contexts share NumExecutors threads, round robin.
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.shared) < p.cfg.NumExecutors {
		e, err := p.newExecutor(false)
		if err != nil {
			return nil, false, err
		}
		p.shared = append(p.shared, e)
	}
	e := p.shared[p.next%len(p.shared)]
	p.next++
	return e, false, nil
}

// Close frees the context once the requests queued before it have run.
// An executor of its own stops; its interpreter is never finalised
// (PLATFORM.md: finalising crashes after some modules), only left idle.
func (c *Context) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	free := func() { C.pyx_ctx_free(c.c) }
	if c.ex.push(free) != nil {
		return // queue full: leak the context rather than block
	}
	if c.own {
		C.pyx_queue_close(c.ex.queue)
		c.pool.allMu.Lock()
		delete(c.pool.all, c.ex)
		c.pool.allMu.Unlock()
	}
}

// ErrClosed: the context was closed.
var ErrClosed = errors.New("pool: context closed")

// Submit queues a request, copying reply and payload; it never blocks.
// payload is a versioned ETF tuple: {M, F, Args, Kwargs} for Call,
// {Code, Locals} for Eval, {Code} for Exec. Once it has run, the executor
// writes one frame to out: reply, then the versioned ETF of the result.
// chain is 0, or the chain a callback's Erlang code calls back into
// (docs/PROTOCOL.md): a context waiting in erlang.call for that chain runs
// the request at once, on top of the waiting one.
func (c *Context) Submit(out *port.Output, op Op, chain int64, reply, payload []byte) error {
	return c.SubmitFrom(out, op, chain, reply, nil, payload)
}

// SubmitFrom is Submit for a request from the process caller, the ETF of
// a pid without version byte (nil: none): the log lines the request
// makes (print, its traceback) name it.
func (c *Context) SubmitFrom(out *port.Output, op Op, chain int64, reply, caller, payload []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	seq := c.pool.seq.Add(1)
	return queueError(C.pyx_queue_request(c.ex.queue, c.c, C.longlong(c.id), cOut(out), C.int(op), C.longlong(seq), C.longlong(chain), bytesPtr(reply), C.size_t(len(reply)), bytesPtr(caller), C.size_t(len(caller)), bytesPtr(payload),
		C.size_t(len(payload))))
}

// CallbackReply gives the BEAM's answer to callback cb (a versioned ETF
// {ok, Value} or {error, {Class, Reason}}) to the erlang.call waiting for it
// on this context's executor; it is dropped if that call gave up.
func (c *Context) CallbackReply(cb int64, payload []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	return queueError(C.pyx_callback_reply(c.ex.queue, C.longlong(cb), bytesPtr(payload), C.size_t(len(payload))))
}

// DropEnv forgets the environment of the process whose pid's ETF (no
// version byte) is pid, if it has one in this context (API.md section 3:
// the BEAM says so when the process exits). It is queued behind the
// requests already there, and retried while the queue is full, so an
// exit is never lost; it returns at once.
func (c *Context) DropEnv(pid []byte) error {
	if err := c.dropEnv(pid); !errors.Is(err, ErrQueueFull) {
		return err
	}
	own := append([]byte(nil), pid...)
	go func() {
		for errors.Is(c.dropEnv(own), ErrQueueFull) {
			time.Sleep(time.Millisecond)
		}
	}()
	return nil
}

func (c *Context) dropEnv(pid []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed // the environments went with the context
	}
	return queueError(C.pyx_queue_drop_env(c.ex.queue, c.c, bytesPtr(pid), C.size_t(len(pid))))
}

// SubmitFile is Submit for a payload too large for the pipe: the first size
// bytes of the file at path (a slot, docs/PROTOCOL.md), which the executor
// maps when the request runs. If the result is large too, the executor
// writes it into the same file and the reply frame holds reply, then a
// zero byte and the result's length as 8 big-endian bytes. A file that
// cannot be read gives the result {error, {slot, Reason}}.
func (c *Context) SubmitFile(out *port.Output, op Op, chain int64, reply []byte, path string, size int) error {
	return c.SubmitFileFrom(out, op, chain, reply, nil, path, size)
}

// SubmitFileFrom is SubmitFile for a request from the process caller, as
// SubmitFrom.
func (c *Context) SubmitFileFrom(out *port.Output, op Op, chain int64, reply, caller []byte, path string, size int) error {
	if size <= 0 || !strings.HasPrefix(path, "/") || strings.IndexByte(path, 0) >= 0 {
		return ErrBadSlot
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	seq := c.pool.seq.Add(1)
	p := []byte(path)
	return queueError(C.pyx_queue_file_request(c.ex.queue, c.c, C.longlong(c.id), cOut(out), C.int(op), C.longlong(seq), C.longlong(chain), bytesPtr(reply), C.size_t(len(reply)), bytesPtr(caller), C.size_t(len(caller)), (*C.char)(bytesPtr(p)),
		C.size_t(len(p)), C.size_t(size)))
}

// ErrBadSlot: a slot request without an absolute path or a size.
var ErrBadSlot = errors.New("pool: a slot needs an absolute path and a size")

// Cancel stops the requests submitted to out with this reply prefix: one
// that has not started never will (its reply is {error, {cancelled, _}}),
// and one that is running gets a KeyboardInterrupt at its next bytecode,
// or at once if it waits in time.sleep, erlang.sleep, erlang.call or
// threading.Lock (and so Event.wait, queue.Queue...: wait.h); once per
// cancel (run.h).
// Every request still gets exactly one reply. It returns at once.
func (p *Pool) Cancel(out *port.Output, reply []byte) {
	p.allMu.Lock()
	defer p.allMu.Unlock()
	for e := range p.all {
		seq := C.pyx_queue_cancel(e.queue, cOut(out), bytesPtr(reply), C.size_t(len(reply)))
		// and a task of its loops, if it has some (loop.h)
		_ = C.pyx_loop_cancel(e.queue, cOut(out), bytesPtr(reply), C.size_t(len(reply)))
		if seq != 0 {
			select { // the watchdog times it
			case p.poke <- struct{}{}:
			default:
			}
			go func(e *executor) {
				// A thread state of its own, on a thread of its own:
				// the wait for the GIL may be long if C code holds it.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				C.pyx_interrupt(e.c, seq)
			}(e)
		}
	}
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// cError turns a malloc'd C message into an error and frees it.
func cError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New("pool: " + C.GoString(msg))
}

// cOut is out's C writer.
func cOut(out *port.Output) *C.pyx_out { return (*C.pyx_out)(out.C()) }

// bytesPtr is b's data for a C call that does not keep it.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
