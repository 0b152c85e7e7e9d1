package pool

import (
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/store"
)

// BenchmarkEvalBatched and BenchmarkCallBatched: requests queued back to
// back on one context, so the figure is the cost of a request without
// thread wake-ups: one cgo crossing to queue it, and in C, on the
// executor, converting, running, converting back and writing the reply.
func BenchmarkEvalBatched(b *testing.B) {
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("a + 1"), etf.MapOf(etf.Atom("a"), 41)})
	batched(b, Eval, payload)
}

func BenchmarkCallBatched(b *testing.B) {
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("operator"), etf.Binary("add"), etf.List{1, 2}, etf.Map{}})
	batched(b, Call, payload)
}

func batched(b *testing.B, op Op, payload []byte) {
	c, err := testPool.NewContext(Auto, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var pending []chan []byte
	b.ReportAllocs()
	for b.Loop() {
		for {
			_, done, err := replies.submit(c, op, payload)
			if err == nil {
				pending = append(pending, done)
				break
			}
			if err != ErrQueueFull {
				b.Fatal(err)
			}
			runtime.Gosched() // the queue is full: let the executor drain it
		}
	}
	for _, done := range pending {
		<-done
	}
}

// BenchmarkCallRoundTrip: one request at a time, waking the executor each
// time (it spins for Config.SpinMicros before sleeping), and the reply
// read back from a pipe.
func BenchmarkCallRoundTrip(b *testing.B) {
	c, err := testPool.NewContext(Auto, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("operator"), etf.Binary("add"), etf.List{1, 2}, etf.Map{}})
	b.ReportAllocs()
	for b.Loop() {
		_, done, err := replies.submit(c, Call, payload)
		if err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

// BenchmarkBinary1MiB: a 1 MiB binary into Python (as bytes) and back.
func BenchmarkBinary1MiB(b *testing.B) {
	c, err := testPool.NewContext(Auto, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	blob := make([]byte, 1<<20)
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("x"), etf.MapOf(etf.Atom("x"), etf.Tuple{etf.Atom("bytes"), etf.Binary(blob)})})
	b.SetBytes(2 << 20)
	b.ReportAllocs()
	for b.Loop() {
		_, done, err := replies.submit(c, Eval, payload)
		if err != nil {
			b.Fatal(err)
		}
		if r := <-done; len(r) < 1<<20 {
			b.Fatalf("result of %d bytes", len(r))
		}
	}
}

// BenchmarkStatePython: ns per erlang.state_incr in a Python loop of b.N
// (loop included), one call, timed in Python.
func BenchmarkStatePythonIncr(b *testing.B) {
	statePython(b, "state_incr('bench:incr')")
}

// BenchmarkStatePythonSet: the same for state_set of a small tuple.
func BenchmarkStatePythonSet(b *testing.B) {
	statePython(b, "state_set('bench:set', (1, 'x'))")
}

// The same with the mirror on, sent to a pipe that is drained.
func BenchmarkStatePythonIncrMirrored(b *testing.B) {
	defer mirrorToDiscard(b)()
	statePython(b, "state_incr('bench:incr')")
}

func BenchmarkStatePythonSetMirrored(b *testing.B) {
	defer mirrorToDiscard(b)()
	statePython(b, "state_set('bench:set', (1, 'x'))")
}

func mirrorToDiscard(b *testing.B) func() {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := port.NewOutput(w)
	if err != nil {
		b.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	store.Mirror(out, true)
	return func() { store.Mirror(out, false) }
}

func statePython(b *testing.B, op string) {
	c, err := testPool.NewContext(Auto, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	code := "def f(n):\n    from erlang import state_incr, state_set\n    for _ in range(n):\n        " + op + "\n"
	payload, _ := etf.Encode(etf.Tuple{etf.Binary(code)})
	_, done, err := replies.submit(c, Exec, payload)
	if err != nil {
		b.Fatal(err)
	}
	<-done
	payload, _ = etf.Encode(etf.Tuple{etf.Binary("__main__"), etf.Binary("f"), etf.List{b.N}, etf.Map{}})
	b.ResetTimer()
	_, done, err = replies.submit(c, Call, payload)
	if err != nil {
		b.Fatal(err)
	}
	<-done
}
