//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/proto"
)

// The pyport binary under test, built once by TestMain with the cgo
// settings of the test run (scripts/with-python.sh).
var pyportBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyport-test-")
	if err != nil {
		panic(err)
	}
	pyportBin = filepath.Join(dir, "pyport")
	build := exec.Command("go", "build", "-o", pyportBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pyport:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sidecar is a pyport driven through pipes, as the BEAM drives it.
type sidecar struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser
	packets chan [2]etf.Term // {Id, Result}, in arrival order
	stderr  *lockedBuffer
	logs    []string // the '$log' packets next skipped, as text
	mu      sync.Mutex
	nextRef uint32
	// exited is closed once cmd.Wait returned (exitErr its result): one
	// Wait, shared by wait and the cleanup
	waitOnce sync.Once
	exited   chan struct{}
	exitErr  error
}

// exit starts the one cmd.Wait, once, and gives the channel closed when it
// returned.
func (s *sidecar) exit() <-chan struct{} {
	s.waitOnce.Do(func() {
		s.exited = make(chan struct{})
		go func() {
			s.exitErr = s.cmd.Wait()
			close(s.exited)
		}()
	})
	return s.exited
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSidecar runs pyport with args; wrap, if not nil, turns the command
// line into the one to run (an intermediate parent).
func startSidecar(t *testing.T, wrap func(argv []string) *exec.Cmd, args ...string) *sidecar {
	t.Helper()
	argv := append([]string{pyportBin}, args...)
	var cmd *exec.Cmd
	if wrap != nil {
		cmd = wrap(argv)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	s := &sidecar{t: t, cmd: cmd, packets: make(chan [2]etf.Term, 64), stderr: &lockedBuffer{}}
	cmd.Stderr = s.stderr
	cmd.WaitDelay = time.Second // a leftover child may hold stderr open
	var err error
	s.in, err = cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		frames := bridge.NewFrameReader(out, 0)
		defer close(s.packets)
		for {
			f, err := frames.Next()
			if err != nil {
				return
			}
			var d etf.Decoder
			id, n, err := d.DecodePrefix(f)
			if err != nil {
				return
			}
			res, err := (&etf.Decoder{CopyBinaries: true}).Decode(f[n:])
			if err != nil {
				return
			}
			s.packets <- [2]etf.Term{id, res}
		}
	}()
	t.Cleanup(func() {
		_ = s.in.Close()
		_ = cmd.Process.Kill()
		<-s.exit()
		if t.Failed() {
			t.Logf("pyport's stderr:\n%s", s.stderr.String())
		}
	})
	return s
}

func (s *sidecar) ref() etf.Ref {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextRef++
	return etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{s.nextRef, 7}}
}

// send writes one packet: the terms' encodings back to back.
func (s *sidecar) send(terms ...etf.Term) {
	s.t.Helper()
	var body []byte
	for _, term := range terms {
		b, err := etf.Encode(term)
		require.NoError(s.t, err)
		body = append(body, b...)
	}
	_, err := s.in.Write(append(bridge.AppendFrameHeader(nil, len(body)), body...))
	require.NoError(s.t, err)
}

// trySend is send for a packet that may find pyport gone (a broken pipe).
func (s *sidecar) trySend(term etf.Term) {
	b, err := etf.Encode(term)
	require.NoError(s.t, err)
	_, _ = s.in.Write(append(bridge.AppendFrameHeader(nil, len(b)), b...))
}

// next is the next packet whose id is not '$log', or fails after timeout.
func (s *sidecar) next(timeout time.Duration) (id, result etf.Term) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case p, ok := <-s.packets:
			if !ok {
				s.t.Fatalf("pyport's output ended; stderr:\n%s", s.stderr.String())
			}
			if p[0] == etf.Atom("$log") {
				// {Dropped, [{Level, Ctx, Caller, Text}]}, acknowledged as py_log does
				if b, ok := p[1].(etf.Tuple); ok && len(b) == 2 {
					entries, _ := b[1].(etf.List)
					for _, e := range entries {
						if l, ok := e.(etf.Tuple); ok && len(l) == 4 {
							if text, ok := l[3].(etf.Binary); ok {
								s.logs = append(s.logs, string(text))
							}
						}
					}
				}
				// a pyport that is exiting may be gone already: no error then
				s.trySend(etf.Tuple{etf.Atom("log_ack"), 1})
				continue
			}
			return p[0], p[1]
		case <-deadline:
			s.t.Fatalf("no packet in %v", timeout)
		}
	}
}

// request sends header (+ payload) and waits for the reply to id.
func (s *sidecar) request(id etf.Term, terms ...etf.Term) etf.Term {
	s.t.Helper()
	s.send(terms...)
	got, res := s.next(60 * time.Second)
	require.True(s.t, etf.Equal(id, got), "reply to %v, want %v (%v)", got, id, res)
	return res
}

func (s *sidecar) createContext(n int, kind string) {
	s.t.Helper()
	id := etf.Tuple{etf.Atom("ctl"), s.ref()}
	res := s.request(id, etf.Tuple{etf.Atom("create_context"), id, n, etf.Atom(kind)})
	require.Equal(s.t, etf.Atom("ok"), res, "create_context %d %s", n, kind)
}

func (s *sidecar) exec(ctx int, code string) etf.Term {
	s.t.Helper()
	id := s.ref()
	return s.request(id, etf.Tuple{etf.Atom("exec"), id, ctx}, etf.Tuple{etf.Binary(code)})
}

// eval returns the value of expr, failing on an error.
func (s *sidecar) eval(ctx int, expr string) etf.Term {
	s.t.Helper()
	id := s.ref()
	res := s.request(id, etf.Tuple{etf.Atom("eval"), id, ctx}, etf.Tuple{etf.Binary(expr), etf.Map{}})
	t, ok := res.(etf.Tuple)
	require.True(s.t, ok && len(t) == 2 && t[0] == etf.Atom("ok"), "eval %q: %v", expr, res)
	return t[1]
}

func (s *sidecar) evalInt(ctx int, expr string) int {
	s.t.Helper()
	n, ok := etf.ToInt64(s.eval(ctx, expr))
	require.True(s.t, ok, "eval %q is no integer", expr)
	return int(n)
}

// wait waits for pyport (or its wrapper) to exit and returns its status.
func (s *sidecar) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exit():
		err := s.exitErr
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(s.t, err)
		return 0
	case <-time.After(timeout):
		s.t.Fatalf("pyport still runs after %v; stderr:\n%s", timeout, s.stderr.String())
		return -1
	}
}

// errorName is Name for a result {error, {Name, _}}, else "".
func errorName(res etf.Term) etf.Term {
	t, ok := res.(etf.Tuple)
	if !ok || len(t) != 2 || t[0] != etf.Atom("error") {
		return nil
	}
	r, ok := t[1].(etf.Tuple)
	if !ok || len(r) != 2 {
		return nil
	}
	return r[0]
}

// alive: pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && len(stat) > i+2 && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// requireGone waits (10 s at most) for every pid to be gone.
func requireGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still alive", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// vmSizeMB is a process's virtual size (VmSize), in MiB.
func vmSizeMB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(t, err)
			return kb >> 10
		}
	}
	t.Fatal("no VmSize")
	return 0
}

// contextsFromEnv: PYPORT_TEST_CONTEXTS contexts (default 2), to measure
// the idle size with more.
func contextsFromEnv() int {
	if n, err := strconv.Atoi(os.Getenv("PYPORT_TEST_CONTEXTS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// With --max-memory-mb at the idle size + 512 MiB, a 2 GiB allocation is a
// MemoryError and pyport goes on serving.
func TestMaxMemoryIsMemoryError(t *testing.T) {
	n := contextsFromEnv()
	idle := startSidecar(t, nil)
	for i := 1; i <= n; i++ {
		idle.createContext(i, "auto")
	}
	idle.eval(1, "1") // every context ready and used once
	vsz := vmSizeMB(t, idle.cmd.Process.Pid)
	t.Logf("idle VmSize with %d contexts: %d MiB", n, vsz)
	require.NoError(t, idle.in.Close())
	require.Equal(t, 0, idle.wait(30*time.Second))

	s := startSidecar(t, nil, "--max-memory-mb", strconv.Itoa(vsz+512))
	for i := 1; i <= n; i++ {
		s.createContext(i, "auto")
	}
	res := s.exec(1, "b'x' * (2 << 30)")
	assert.Equal(t, etf.Atom("MemoryError"), errorName(res), "%v", res)
	assert.Equal(t, etf.Atom("ok"), s.exec(1, "y = b'x' * (64 << 20)"), "after the MemoryError")
	assert.Equal(t, 64<<20, s.evalInt(n, "len(b'x' * (64 << 20))"))
}

// runUntilMarked starts code on ctx after it has created the file marker,
// and returns the request's id once the file exists: the request runs.
func (s *sidecar) runUntilMarked(ctx int, code string) etf.Ref {
	s.t.Helper()
	marker := filepath.Join(s.t.TempDir(), "running")
	id := s.ref()
	s.send(etf.Tuple{etf.Atom("exec"), id, ctx},
		etf.Tuple{etf.Binary(fmt.Sprintf("open(%q, 'w').close()\n%s", marker, code))})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			return id
		}
		require.True(s.t, time.Now().Before(deadline), "the request did not start")
		time.Sleep(10 * time.Millisecond)
	}
}

// A cancelled request stuck in C code: pyport says '$exit', {stuck, Ctx,
// GraceMs}, and exits with status 70.
func TestStuckCancelledRequestExits(t *testing.T) {
	for _, code := range []string{
		"import itertools\nsum(itertools.repeat(1, 10**13))",
		// a wait in C that stays there: an interrupt that select lets
		// through (it may, when a signal breaks its wait) is caught
		"import select\nwhile True:\n    try:\n        select.select([], [], [], 600)\n    except KeyboardInterrupt:\n        pass",
	} {
		t.Run(strings.Fields(code)[1], func(t *testing.T) {
			s := startSidecar(t, nil, "--stuck-grace-ms", "300")
			s.createContext(1, "auto")
			id := s.runUntilMarked(1, code)
			s.send(etf.Tuple{etf.Atom("cancel"), id})
			got, res := s.next(30 * time.Second)
			assert.Equal(t, etf.Atom("$exit"), got, "%v", res)
			assert.True(t, etf.Equal(etf.Tuple{etf.Atom("stuck"), 1, 300}, res), "%v", res)
			assert.Equal(t, 70, s.wait(30*time.Second))
			// the sidecar's own log lines go to the BEAM's logger
			assert.Contains(t, strings.Join(s.logs, "\n"), "still runs 300 ms after its cancel")
		})
	}
}

// A cancelled pure-Python loop is interrupted and answered; pyport stays.
func TestCancelledPythonLoopIsNotStuck(t *testing.T) {
	s := startSidecar(t, nil, "--stuck-grace-ms", "200")
	s.createContext(1, "auto")
	id := s.runUntilMarked(1, "while True: pass")
	s.send(etf.Tuple{etf.Atom("cancel"), id})
	got, res := s.next(30 * time.Second)
	require.True(t, etf.Equal(id, got), "%v: %v", got, res)
	assert.Equal(t, etf.Atom("KeyboardInterrupt"), errorName(res), "%v", res)
	time.Sleep(time.Second) // five graces: the watchdog would have fired
	assert.Equal(t, 3, s.evalInt(1, "1 + 2"))
	require.NoError(t, s.in.Close())
	assert.Equal(t, 0, s.wait(30*time.Second))
}

// startSleeper starts `sleep 300` from Python in a worker context and
// returns pyport's pid and the sleep's; pyport leads its process group.
func (s *sidecar) startSleeper() (pyport, sleeper int) {
	s.t.Helper()
	s.createContext(1, "worker")
	require.Equal(s.t, etf.Atom("ok"), s.exec(1, "import os, subprocess\np = subprocess.Popen(['sleep', '300'])"))
	pyport, sleeper = s.evalInt(1, "os.getpid()"), s.evalInt(1, "p.pid")
	require.Equal(s.t, pyport, s.evalInt(1, "os.getpgrp()"), "pyport leads its process group")
	require.True(s.t, alive(sleeper))
	return pyport, sleeper
}

// Stdin's end: pyport exits 0 and takes the processes it started along.
func TestEOFKillsProcessGroup(t *testing.T) {
	s := startSidecar(t, nil)
	_, sleeper := s.startSleeper()
	require.NoError(t, s.in.Close())
	assert.Equal(t, 0, s.wait(30*time.Second))
	requireGone(t, sleeper)
}

// SIGTERM: the same clean-up, status 128 + 15.
func TestSIGTERMKillsProcessGroup(t *testing.T) {
	s := startSidecar(t, nil)
	pyport, sleeper := s.startSleeper()
	require.NoError(t, syscall.Kill(pyport, syscall.SIGTERM))
	assert.Equal(t, 128+int(syscall.SIGTERM), s.wait(30*time.Second))
	requireGone(t, sleeper)
}

// The parent's death (SIGKILL, as when the BEAM's erl_child_setup dies):
// pyport and its processes go, with its stdin still open.
func TestParentDeathKillsPyport(t *testing.T) {
	// sh gives a background job /dev/null as stdin unless told otherwise.
	wrap := func(argv []string) *exec.Cmd {
		return exec.Command("sh", append([]string{"-c", `exec 3<&0; "$@" <&3 3<&- & wait`, "sh"}, argv...)...)
	}
	s := startSidecar(t, wrap)
	pyport, sleeper := s.startSleeper()
	require.Equal(t, s.cmd.Process.Pid, s.evalInt(1, "os.getppid()"), "sh is pyport's parent")
	require.NoError(t, s.cmd.Process.Kill())
	requireGone(t, pyport, sleeper)
}

// callback reads the next packet, a callback {'$cb', N} with body {Ctx,
// Chain, Name, Args}, and returns its chain.
func (s *sidecar) callback(name string) int64 {
	s.t.Helper()
	id, body := s.next(30 * time.Second)
	cb, ok := id.(etf.Tuple)
	require.True(s.t, ok && len(cb) == 2 && cb[0] == etf.Atom("$cb"), "%v: %v", id, body)
	b, ok := body.(etf.Tuple)
	require.True(s.t, ok && len(b) == 4, "%v", body)
	assert.Equal(s.t, etf.Binary(name), b[2])
	chain, ok := etf.ToInt64(b[1])
	require.True(s.t, ok)
	return chain
}

// A cancelled request waiting in erlang.call, with a nested request on
// top of it also waiting in erlang.call: the chain unwinds (both are
// answered) and the watchdog stays quiet.
func TestCancelledCallbackChainUnwinds(t *testing.T) {
	s := startSidecar(t, nil, "--stuck-grace-ms", "2000")
	s.createContext(1, "auto")
	outer := s.ref()
	s.send(etf.Tuple{etf.Atom("exec"), outer, 1}, etf.Tuple{etf.Binary("import erlang\nerlang.call('f')")})
	chain := s.callback("f")
	nested := etf.Tuple{etf.Atom("nested"), s.ref()}
	s.send(etf.Tuple{etf.Atom("exec"), nested, 1, etf.Atom("none"), chain},
		etf.Tuple{etf.Binary("import erlang\nerlang.call('g')")})
	s.callback("g")
	s.send(etf.Tuple{etf.Atom("cancel"), outer})
	for _, want := range []etf.Term{nested, outer} {
		got, res := s.next(30 * time.Second)
		require.True(t, etf.Equal(want, got), "%v: %v, want a reply to %v", got, res, want)
		assert.Equal(t, etf.Atom("KeyboardInterrupt"), errorName(res), "%v", res)
	}
	time.Sleep(3 * time.Second) // past the grace: the watchdog would have fired
	assert.Equal(t, 3, s.evalInt(1, "1 + 2"))
	require.NoError(t, s.in.Close())
	assert.Equal(t, 0, s.wait(30*time.Second))
}

// A parent that exits while pyport starts, stdin still open: pyport goes,
// by PR_SET_PDEATHSIG or, if the parent was gone before the prctl, by the
// check of its parent that follows.
func TestOrphanAtStartExits(t *testing.T) {
	wrap := func(argv []string) *exec.Cmd {
		return exec.Command("sh", append([]string{"-c", `exec 3<&0; "$@" <&3 3<&- & echo "pid $!" >&2`, "sh"}, argv...)...)
	}
	s := startSidecar(t, wrap)
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := fmt.Sscanf(s.stderr.String(), "pid %d", &pid); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "no pid from sh")
		time.Sleep(10 * time.Millisecond)
	}
	requireGone(t, pid)
}

// --info answers from the build alone: one frame, {ok, Info}, then exit 0.
func TestInfoFlag(t *testing.T) {
	out, err := exec.Command(pyportBin, "--info", "--num-executors", "3").Output()
	require.NoError(t, err)
	frames := bridge.NewFrameReader(strings.NewReader(string(out)), 0)
	frame, err := frames.Next()
	require.NoError(t, err)
	term, err := etf.Decode(frame)
	require.NoError(t, err)
	want, err := etf.Encode(proto.InfoResult(buildInfo(3)))
	require.NoError(t, err)
	got, err := etf.Encode(term)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	info := buildInfo(3)
	assert.Equal(t, string(pool.BuildMode()), info.Mode)
	assert.Equal(t, info.Mode == "subinterp", info.SubinterpSupported)
	assert.NotEmpty(t, info.PythonVersion)
	_, err = frames.Next()
	assert.ErrorIs(t, err, io.EOF)
}
