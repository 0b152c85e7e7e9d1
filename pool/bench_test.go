package pool

import (
	"runtime"
	"sync"
	"testing"

	"github.com/erlang-python/erlang_python/etf"
)

// BenchmarkEvalBatched: requests queued back to back on one context, so
// the figure is the cost of a request without thread wake-ups: one cgo
// crossing to queue it, one to run it (convert, evaluate, convert back).
func BenchmarkEvalBatched(b *testing.B) {
	c, err := testPool.NewContext(Auto)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("a + 1"), etf.MapOf(etf.Atom("a"), 41)})
	var wg sync.WaitGroup
	done := func([]byte) { wg.Done() }
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		for {
			err := c.Submit(&Request{Op: Eval, Payload: payload, Done: done})
			if err == nil {
				break
			}
			if err != ErrQueueFull {
				b.Fatal(err)
			}
			runtime.Gosched() // the queue is full: let the executor drain it
		}
	}
	wg.Wait()
}

// BenchmarkCallRoundTrip: one request at a time, waking the executor each
// time (it spins for Config.SpinMicros before sleeping).
func BenchmarkCallRoundTrip(b *testing.B) {
	c, err := testPool.NewContext(Auto)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("operator"), etf.Binary("add"), etf.List{1, 2}, etf.Map{}})
	done := make(chan struct{}, 1)
	req := func() *Request {
		return &Request{Op: Call, Payload: payload, Done: func([]byte) { done <- struct{}{} }}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Submit(req()); err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

// BenchmarkBinary1MiB: a 1 MiB binary into Python (as bytes) and back.
func BenchmarkBinary1MiB(b *testing.B) {
	c, err := testPool.NewContext(Auto)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	blob := make([]byte, 1<<20)
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("x"), etf.MapOf(etf.Atom("x"), etf.Tuple{etf.Atom("bytes"), etf.Binary(blob)})})
	done := make(chan int, 1)
	b.SetBytes(2 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Submit(&Request{Op: Eval, Payload: payload, Done: func(r []byte) { done <- len(r) }}); err != nil {
			b.Fatal(err)
		}
		if n := <-done; n < 1<<20 {
			b.Fatalf("result of %d bytes", n)
		}
	}
}
