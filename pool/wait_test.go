package pool

import (
	_ "embed" // testdata/waits_parity.py
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
)

// The context kinds a wait runs in: own-GIL sub-interpreters (Auto in
// subinterp mode) or namespaces on shared executors (Auto otherwise), and
// worker contexts (the main interpreter, an executor of their own).
var waitKinds = []struct {
	name string
	kind Kind
}{{"auto", Auto}, {"worker", Worker}}

// startWait runs code (an exec) on c after it has created a marker file,
// waits for the marker, and returns the reply prefix and the channel of
// the result: code is then under way (in its wait, unless it is slow to
// get there).
func startWait(t *testing.T, c *Context, setup, code string) ([]byte, chan []byte) {
	t.Helper()
	if setup != "" {
		require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(setup)})))
	}
	marker := filepath.Join(t.TempDir(), "started")
	src := fmt.Sprintf("open(%q, 'w').close()\n%s", marker, code)
	payload, _ := etf.Encode(etf.Tuple{etf.Binary(src)})
	reply, done, err := replies.submit(c, Exec, payload)
	require.NoError(t, err)
	for i := 0; ; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		require.Less(t, i, 2000, "the request did not start")
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // from the marker into the wait
	return reply, done
}

// Each wait would last 600 s: the result and the next request come back
// within wait's 20 s only if the cancel ended it.
var cancellableWaits = map[string][2]string{
	"time.sleep":         {"import time", "time.sleep(600)"},
	"from time import":   {"from time import sleep", "sleep(600)"},
	"erlang.sleep":       {"import erlang", "erlang.sleep(600)"},
	"Event.wait":         {"import threading\nev = threading.Event()", "ev.wait(600)"},
	"Event.wait forever": {"import threading\nev = threading.Event()", "ev.wait()"},
	"Condition.wait":     {"import threading\ncv = threading.Condition()", "with cv:\n    cv.wait(600)"},
	"Queue.get":          {"import queue\nq = queue.Queue()", "q.get(timeout=600)"},
	"Queue.put":          {"import queue\nq = queue.Queue(1)\nq.put(1)", "q.put(2, timeout=600)"},
	"Semaphore":          {"import threading\ns = threading.Semaphore(0)", "s.acquire(timeout=600)"},
	"Lock.acquire":       {"import threading\nl = threading.Lock()\nl.acquire()", "l.acquire(timeout=600)"},
	"Lock forever":       {"from threading import Lock\nl = Lock()\nl.acquire()", "with l:\n    pass"},
	"Future.result":      {"import concurrent.futures as cf\nf = cf.Future()", "f.result(timeout=600)"},
	"futures.wait":       {"import concurrent.futures as cf\nf = cf.Future()", "cf.wait([f], timeout=600)"},
	"Barrier":            {"import threading\nb = threading.Barrier(2)", "b.wait(600)"},
	"subprocess.run":     {"import subprocess", "subprocess.run(['sleep', '600'], timeout=600)"},
}

func TestCancelEndsWaits(t *testing.T) {
	for _, k := range waitKinds {
		for name, w := range cancellableWaits {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				c := newCtx(t, k.kind)
				reply, done := startWait(t, c, w[0], w[1])
				testPool.Cancel(replies.out, reply)
				assert.True(t, etf.Equal(etf.Exception("KeyboardInterrupt", ""), wait(t, done)))
				assert.True(t, etf.Equal(etf.OKTuple(3), eval(t, c, "1 + 2")), "the context serves again")
			})
		}
	}
}

// A cancel interrupts once, as a Ctrl-C: the waits of the except and
// finally blocks that the KeyboardInterrupt runs wait as usual (a finally
// that restores a lock must get it), and no second interrupt comes.
func TestCancelInterruptsOnce(t *testing.T) {
	for _, k := range waitKinds {
		t.Run(k.name, func(t *testing.T) {
			c := newCtx(t, k.kind)
			setup := "import time, threading\nl, held, done = threading.Lock(), threading.Event(), []\n" +
				"def hold():\n    with l:\n        held.set()\n        time.sleep(0.1)"
			// in the finally block: an Event.wait, a sleep and a lock held
			// by another thread for 0.1 s
			code := "try:\n    time.sleep(600)\nfinally:\n    threading.Thread(target=hold).start()\n    held.wait()\n" +
				"    time.sleep(0.01)\n    with l:\n        done.append(1)"
			reply, result := startWait(t, c, setup, code)
			testPool.Cancel(replies.out, reply)
			assert.True(t, etf.Equal(etf.Exception("KeyboardInterrupt", ""), wait(t, result)))
			assert.True(t, etf.Equal(etf.OKTuple(etf.List{1}), eval(t, c, "done")), "the finally block ran to its end")
		})
	}
}

//go:embed testdata/waits_parity.py
var waitsParityPy string

// time.sleep and threading's lock keep CPython's contract: the same
// results and errors for the same arguments.
func TestWaitsKeepCPythonsContract(t *testing.T) {
	for _, k := range waitKinds {
		t.Run(k.name, func(t *testing.T) {
			c := newCtx(t, k.kind)
			require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(waitsParityPy)})))
			if res := eval(t, c, "differences"); !etf.Equal(etf.OKTuple(etf.List{}), res) {
				text := eval(t, c, "'; '.join(map(repr, differences))")
				if tup, ok := text.(etf.Tuple); ok && len(tup) == 2 {
					text = tup[1]
				}
				if b, ok := text.(etf.Binary); ok {
					text = string(b)
				}
				t.Errorf("differences from CPython: %v", text)
			}
		})
	}
}

// Not cancelled, a sleep lasts its whole time, in a request and in a
// thread of its own (where nothing cancels it); a timed wait its timeout.
func TestWaitsLastTheirTime(t *testing.T) {
	code := `import time, threading
def timed(f, *args):
    t = time.monotonic()
    f(*args)
    return time.monotonic() - t
out = {}
out['sleep'] = timed(time.sleep, 0.05)
out['sleep0'] = timed(time.sleep, 0)
out['event'] = timed(threading.Event().wait, 0.05)
th = threading.Thread(target=lambda: out.__setitem__('thread', timed(time.sleep, 0.05)))
th.start()
th.join()
`
	for _, k := range waitKinds {
		t.Run(k.name, func(t *testing.T) {
			c := newCtx(t, k.kind)
			require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(code)})))
			for _, name := range []string{"sleep", "event", "thread"} {
				res := eval(t, c, fmt.Sprintf("out[%q] >= 0.05", name))
				assert.True(t, etf.Equal(etf.OKTuple(true), res), "%s: %v", name, eval(t, c, "out"))
			}
		})
	}
}

// A cancel ends only the waits of the cancelled request's thread: a
// Python thread it started sleeps on; and a request cancelled before its
// wait (the cancel came during its bytecode) raises at the wait at once.
func TestCancelLeavesOtherThreadsWaits(t *testing.T) {
	c := newCtx(t, Auto)
	setup := "import threading, time\nslept = []\nth = threading.Thread(target=lambda: slept.append(time.sleep(0.3) or 1))\nth.start()"
	reply, done := startWait(t, c, setup, "time.sleep(600)")
	testPool.Cancel(replies.out, reply)
	assert.True(t, etf.Equal(etf.Exception("KeyboardInterrupt", ""), wait(t, done)))
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{}), eval(t, c, "slept")), "the thread's sleep went on")
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{1}), eval(t, c, "th.join() or slept")))
}

// The lock under contention: threads that share a counter under one
// threading.Lock, and producers and consumers of a small queue.Queue
// (Condition.wait and notify), lose no update and no item.
func TestLockUnderContention(t *testing.T) {
	code := `import threading, queue
lock, count = threading.Lock(), [0]
def add():
    for _ in range(5000):
        with lock:
            count[0] += 1
q, got = queue.Queue(4), []
def produce(k):
    for i in range(2000):
        q.put(k * 2000 + i, timeout=30)
def consume():
    while (item := q.get(timeout=30)) is not None:
        got.append(item)
threads = [threading.Thread(target=add) for _ in range(4)] + [threading.Thread(target=produce, args=(k,)) for k in range(3)]
consumers = [threading.Thread(target=consume) for _ in range(3)]
for th in threads + consumers:
    th.start()
for th in threads:
    th.join()
for _ in consumers:
    q.put(None)
for th in consumers:
    th.join()
result = [count[0], sorted(got) == list(range(6000))]
`
	for _, k := range waitKinds {
		t.Run(k.name, func(t *testing.T) {
			c := newCtx(t, k.kind)
			require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(code)})))
			assert.True(t, etf.Equal(etf.OKTuple(etf.List{20000, true}), eval(t, c, "result")), "%v", eval(t, c, "result"))
		})
	}
}
