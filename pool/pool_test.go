package pool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
)

var (
	testPool *Pool
	replies  *sink
)

// Python can start once per process: every test shares this pool, and
// one Output, a pipe read by replies.
func TestMain(m *testing.M) {
	p, err := Start(Config{PythonPath: []string{"/tmp/pyx-test-path"}, NumExecutors: 2, SpinMicros: 100})
	if err != nil {
		panic(err)
	}
	testPool = p
	if replies, err = newSink(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// sink reads the frames executors write to an Output and hands each
// result to whoever waits for its reply prefix (8 bytes, from next).
type sink struct {
	out     *port.Output
	logs    chan []byte // the bodies of '$log' packets
	envs    chan []byte // the bodies of '$env' packets
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []byte
	caller  []byte // the pid requests come from (nil: none, as in most tests)
}

func newSink() (*sink, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	out, err := port.NewOutput(w)
	if err != nil {
		return nil, err
	}
	s := &sink{out: out, logs: make(chan []byte, 64), envs: make(chan []byte, 64), waiting: make(map[uint64]chan []byte)}
	go s.read(bufio.NewReader(r))
	return s, nil
}

var (
	logHead, _ = etf.Encode(etf.Atom("$log"))
	envHead, _ = etf.Encode(etf.Atom("$env"))
)

func (s *sink) read(r io.Reader) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		if rest, ok := bytes.CutPrefix(frame, logHead); ok {
			s.out.LogAck(1) // as py_log does: the next batch may come
			select {
			case s.logs <- rest:
			default: // nobody looks
			}
			continue
		}
		if rest, ok := bytes.CutPrefix(frame, envHead); ok {
			select {
			case s.envs <- rest:
			default: // nobody looks
			}
			continue
		}
		id := binary.BigEndian.Uint64(frame)
		s.mu.Lock()
		ch := s.waiting[id]
		delete(s.waiting, id)
		s.mu.Unlock()
		if ch != nil {
			ch <- frame[8:]
		}
	}
}

// submit queues a request and returns its reply prefix and the channel its
// result will come on.
func (s *sink) submit(c *Context, op Op, payload []byte) ([]byte, chan []byte, error) {
	ch := make(chan []byte, 1)
	s.mu.Lock()
	s.next++
	id := s.next
	s.waiting[id] = ch
	s.mu.Unlock()
	reply := binary.BigEndian.AppendUint64(nil, id)
	return reply, ch, c.SubmitFrom(s.out, op, 0, reply, s.caller, payload)
}

// run submits one request and waits for its decoded result.
func run(t *testing.T, c *Context, op Op, payload etf.Term) etf.Term {
	t.Helper()
	b, err := etf.Encode(payload)
	require.NoError(t, err)
	_, done, err := replies.submit(c, op, b)
	require.NoError(t, err)
	return wait(t, done)
}

func wait(t *testing.T, done chan []byte) etf.Term {
	t.Helper()
	select {
	case res := <-done:
		term, err := (&etf.Decoder{CopyBinaries: true}).Decode(res)
		if err != nil {
			term = etf.Tuple{etf.Atom("undecodable"), etf.Binary(err.Error())}
		}
		return term
	case <-time.After(20 * time.Second):
		t.Fatal("no result in 20 s")
		return nil
	}
}

func eval(t *testing.T, c *Context, code string) etf.Term {
	return run(t, c, Eval, etf.Tuple{etf.Binary(code), etf.Map{}})
}

func newCtx(t *testing.T, kind Kind) *Context {
	t.Helper()
	c, err := testPool.NewContext(kind, 0)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestModeMatchesBuild(t *testing.T) {
	assert.Contains(t, []Mode{SubInterp, MultiExecutor, FreeThreaded}, testPool.Mode())
	assert.NotEmpty(t, testPool.Version())
}

func TestCallEvalExec(t *testing.T) {
	c := newCtx(t, Auto)
	assert.True(t, etf.Equal(etf.OKTuple(4.0), run(t, c, Call,
		etf.Tuple{etf.Binary("math"), etf.Binary("sqrt"), etf.List{16}, etf.Map{}})))
	assert.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary("x = 42\ndef f(a, b=1): return a * b")})))
	assert.True(t, etf.Equal(etf.OKTuple(42), eval(t, c, "x")))
	assert.True(t, etf.Equal(etf.OKTuple(21), run(t, c, Call,
		etf.Tuple{etf.Binary("__main__"), etf.Binary("f"), etf.List{7}, etf.MapOf(etf.Atom("b"), 3)})))
	assert.True(t, etf.Equal(etf.OKTuple(3), run(t, c, Eval,
		etf.Tuple{etf.Binary("a + b"), etf.MapOf(etf.Atom("a"), 1, etf.Atom("b"), 2)})))
	assert.True(t, etf.Equal(etf.OKTuple(etf.Binary("/tmp/pyx-test-path")), eval(t, c, "__import__('sys').path[0]")))
}

func TestContextsAreIsolated(t *testing.T) {
	a, b := newCtx(t, Auto), newCtx(t, Auto)
	run(t, a, Exec, etf.Tuple{etf.Binary("only_here = 1")})
	assert.True(t, etf.Equal(etf.OKTuple(1), eval(t, a, "only_here")))
	tag, _ := etf.Tag(eval(t, b, "only_here"))
	assert.Equal(t, etf.ErrorAtom, tag)
	assert.True(t, etf.Equal(etf.Exception("NameError", "name 'only_here' is not defined"), eval(t, b, "only_here")))
}

func TestErrors(t *testing.T) {
	c := newCtx(t, Auto)
	name := func(res etf.Term) etf.Term {
		tup, ok := res.(etf.Tuple)
		require.True(t, ok && len(tup) == 2 && tup[0] == etf.ErrorAtom, "%#v", res)
		return tup[1].(etf.Tuple)[0]
	}
	assert.Equal(t, etf.Atom("ZeroDivisionError"), name(eval(t, c, "1/0")))
	assert.Equal(t, etf.Atom("SyntaxError"), name(eval(t, c, "1 +")))
	assert.Equal(t, etf.Atom("ModuleNotFoundError"), name(run(t, c, Call,
		etf.Tuple{etf.Binary("no_such_module"), etf.Binary("f"), etf.List{}, etf.Map{}})))
	assert.Equal(t, etf.Atom("AttributeError"), name(run(t, c, Call,
		etf.Tuple{etf.Binary("math"), etf.Binary("nope"), etf.List{}, etf.Map{}})))
	assert.Equal(t, etf.Atom("TypeError"), name(eval(t, c, "{1, 2}")), "a set has no term")
	assert.Equal(t, etf.Atom("TypeError"), name(run(t, c, Call, etf.Tuple{etf.Binary("math")})), "bad payload")
	assert.Equal(t, etf.Atom("ValueError"), name(run(t, c, Eval, etf.Tuple{etf.Binary("1"), etf.Map{}, etf.ImproperList{Elems: []etf.Term{1}, Tail: 2}})))
	// The context still serves.
	assert.True(t, etf.Equal(etf.OKTuple(2), eval(t, c, "1 + 1")))
}

func TestCancelInterruptsRunningCode(t *testing.T) {
	c := newCtx(t, Auto)
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("[x for x in iter(int, 1)]"), etf.Map{}})
	reply, done, err := replies.submit(c, Eval, payload)
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	testPool.Cancel(replies.out, reply)
	// The next request runs once the loop is interrupted.
	assert.True(t, etf.Equal(etf.OKTuple(3), eval(t, c, "1 + 2")))
	t.Logf("next request served %v after the cancel", time.Since(start))
	// Still one reply: the interrupt, which nobody waits for.
	assert.True(t, etf.Equal(etf.Exception("KeyboardInterrupt", ""), wait(t, done)))
}

func TestCancelGetsPastExceptHandlers(t *testing.T) {
	c := newCtx(t, Auto)
	src := "def stubborn():\n    while True:\n        try:\n            while True: pass\n        except Exception:\n            pass\n"
	require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(src)})))
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("__main__"), etf.Binary("stubborn"), etf.List{}, etf.Map{}})
	reply, _, err := replies.submit(c, Call, payload)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	testPool.Cancel(replies.out, reply)
	assert.True(t, etf.Equal(etf.OKTuple(7), eval(t, c, "3 + 4")), "an except Exception in the loop must not keep the context")
}

func TestCancelBeforeStartSkipsRequest(t *testing.T) {
	c := newCtx(t, Auto)
	run(t, c, Exec, etf.Tuple{etf.Binary("ran = []")})
	block, _ := etf.Encode(etf.Tuple{etf.Binary("__import__('time').sleep(0.3)"), etf.Map{}})
	_, first, err := replies.submit(c, Eval, block)
	require.NoError(t, err)
	mark, _ := etf.Encode(etf.Tuple{etf.Binary("ran.append(1)"), etf.Map{}})
	reply, skipped, err := replies.submit(c, Eval, mark)
	require.NoError(t, err)
	testPool.Cancel(replies.out, reply)
	wait(t, first)
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{}), eval(t, c, "ran")), "the cancelled request ran")
	// Still one reply, saying so.
	assert.True(t, etf.Equal(etf.Exception("cancelled", "cancelled before it started"), wait(t, skipped)))
}

func TestCancelOfAnotherOutputLeavesRequest(t *testing.T) {
	c := newCtx(t, Auto)
	other, err := newSink()
	require.NoError(t, err)
	block, _ := etf.Encode(etf.Tuple{etf.Binary("__import__('time').sleep(0.2) or 5"), etf.Map{}})
	reply, done, err := replies.submit(c, Eval, block)
	require.NoError(t, err)
	testPool.Cancel(other.out, reply)
	assert.True(t, etf.Equal(etf.OKTuple(5), wait(t, done)))
}

func TestWorkerContextRunsInMainInterpreter(t *testing.T) {
	w := newCtx(t, Worker)
	res := eval(t, w, "__import__('_interpreters' if __import__('sys').version_info >= (3, 13) else '_xxsubinterpreters').get_current() == __import__('_interpreters' if __import__('sys').version_info >= (3, 13) else '_xxsubinterpreters').get_main()")
	if testPool.Mode() == SubInterp {
		assert.True(t, etf.Equal(etf.OKTuple(true), res), "%#v", res)
		sub := newCtx(t, Auto)
		res = eval(t, sub, "__import__('_interpreters' if __import__('sys').version_info >= (3, 13) else '_xxsubinterpreters').get_current() == __import__('_interpreters' if __import__('sys').version_info >= (3, 13) else '_xxsubinterpreters').get_main()")
		assert.True(t, etf.Equal(etf.OKTuple(false), res), "%#v", res)
	}
}

func TestParallelContexts(t *testing.T) {
	ctxs := []*Context{newCtx(t, Auto), newCtx(t, Auto), newCtx(t, Auto), newCtx(t, Auto)}
	var wg sync.WaitGroup
	for i, c := range ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				res := run(t, c, Eval, etf.Tuple{etf.Binary("sum(range(n))"), etf.MapOf(etf.Atom("n"), i*100+j)})
				n := int64(i*100 + j)
				assert.True(t, etf.Equal(etf.OKTuple(n*(n-1)/2), res))
			}
		}()
	}
	wg.Wait()
}

func TestDecimalAndDatetimeInManyInterpreters(t *testing.T) {
	// PLATFORM.md: on 3.12 the C versions corrupt the heap in two or more
	// own-GIL interpreters; the boot guard makes them pure Python.
	for range 3 {
		c := newCtx(t, Auto)
		res := eval(t, c, "str(__import__('decimal').Decimal('1.1') + 1) + __import__('datetime').date(2024, 1, 2).isoformat()")
		assert.True(t, etf.Equal(etf.OKTuple(etf.Binary("2.12024-01-02")), res), "%#v", res)
	}
}

func TestTracebackOfPythonErrors(t *testing.T) {
	c, err := testPool.NewContext(Auto, 42)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	for len(replies.logs) > 0 { // another test's
		<-replies.logs
	}
	run(t, c, Exec, etf.Tuple{etf.Binary("def inner():\n    return 1 / 0\ndef outer():\n    return inner()\n")})
	// The traceback, {[], [{info, 42, undefined, Text}]} after the id '$log', is written before the reply.
	traceback := func(op Op, payload etf.Term) string {
		run(t, c, op, payload)
		select {
		case body := <-replies.logs:
			term, err := (&etf.Decoder{CopyBinaries: true}).Decode(body)
			require.NoError(t, err)
			batch, ok := term.(etf.Tuple) // {[{Level, Dropped}], [{Level, Ctx, Caller, Text}]}
			require.True(t, ok && len(batch) == 2, "%v", term)
			entries, ok := batch[1].(etf.List)
			require.True(t, ok && len(entries) == 1, "%v", term)
			tup, ok := entries[0].(etf.Tuple)
			require.True(t, ok && len(tup) == 4, "%v", term)
			assert.Equal(t, etf.Atom("info"), tup[0])
			assert.Equal(t, int64(42), tup[1])
			assert.Equal(t, etf.Atom("undefined"), tup[2]) // Submit: no caller
			return string(tup[3].(etf.Binary))
		default:
			return ""
		}
	}
	text := traceback(Call, etf.Tuple{etf.Binary("__main__"), etf.Binary("outer"), etf.List{}, etf.Map{}})
	assert.Contains(t, text, "Traceback (most recent call last)")
	assert.Contains(t, text, "in inner")
	assert.Contains(t, text, "ZeroDivisionError: division by zero")
	assert.Empty(t, traceback(Eval, etf.Tuple{etf.Binary("1 + 1"), etf.Map{}}), "no traceback without an error")
	assert.Empty(t, traceback(Call, etf.Tuple{etf.Binary("math")}), "a bad payload raises no Python traceback")
}

// Requests from a process run in its own environment, a copy of __main__
// made on its first request, which a '$env' packet announces once; without
// a caller they run in __main__; DropEnv forgets one.
func TestProcessBoundEnvironments(t *testing.T) {
	c, err := testPool.NewContext(Auto, 42)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	pidA, _ := etf.Encode(etf.Pid{Node: "a@host", ID: 1, Creation: 1})
	pidB, _ := etf.Encode(etf.Pid{Node: "a@host", ID: 2, Creation: 1})
	from := func(pid []byte) *sink {
		s, err := newSink()
		require.NoError(t, err)
		if pid != nil {
			s.caller = pid[1:]
		}
		return s
	}
	a, b, none := from(pidA), from(pidB), from(nil)
	evalBy := func(s *sink, code string) etf.Term {
		p, _ := etf.Encode(etf.Tuple{etf.Binary(code), etf.Map{}})
		_, done, err := s.submit(c, Eval, p)
		require.NoError(t, err)
		return wait(t, done)
	}
	notice := func(s *sink, pid []byte) {
		t.Helper()
		select {
		case body := <-s.envs:
			// versioned {42, Pid}: the context's id, then the pid as it came
			assert.Equal(t, append([]byte{etf.VersionTag, 104, 2, 97, 42}, pid[1:]...), body, "{Ctx, Pid}")
		case <-time.After(5 * time.Second):
			t.Fatal("no '$env' packet")
		}
	}
	_, done, err := none.submit(c, Exec, mustEncode(t, etf.Tuple{etf.Binary("shared = 'main'")}))
	require.NoError(t, err)
	assert.Equal(t, etf.Atom("ok"), wait(t, done))
	assert.Equal(t, etf.OKTuple(etf.Binary("main")), evalBy(none, "shared"))
	assert.Equal(t, etf.OKTuple(etf.Binary("main")), evalBy(a, "shared")) // made from __main__
	notice(a, pidA)
	assert.Equal(t, etf.OKTuple(int64(1)), evalBy(a, "globals().setdefault('x', 1)"))
	assert.Equal(t, etf.OKTuple(int64(1)), evalBy(a, "x"))
	assert.Equal(t, etf.ErrorAtom, evalBy(b, "x").(etf.Tuple)[0])
	notice(b, pidB)
	assert.Equal(t, etf.ErrorAtom, evalBy(none, "x").(etf.Tuple)[0])
	assert.Equal(t, etf.OKTuple(int64(3)), evalBy(none, "__import__('erlang')._env_count() + 1"))
	select {
	case <-a.envs:
		t.Fatal("a second '$env' for the same process")
	default:
	}
	require.NoError(t, c.DropEnv(pidA[1:]))
	assert.Equal(t, etf.ErrorAtom, evalBy(a, "x").(etf.Tuple)[0]) // a new one, empty
	notice(a, pidA)
}

func mustEncode(t *testing.T, term etf.Term) []byte {
	t.Helper()
	b, err := etf.Encode(term)
	require.NoError(t, err)
	return b
}
