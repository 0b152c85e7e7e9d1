package pool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
)

// A task request whose result is a coroutine is answered when the
// coroutine ends, and the context serves calls meanwhile (loop.h).
func TestTaskAnswersWhenItsCoroutineEnds(t *testing.T) {
	for _, kind := range []Kind{Auto, Worker} {
		c := newCtx(t, kind)
		src := "import asyncio\nstate = []\nasync def slow(x):\n    await asyncio.sleep(0.3)\n    state.append(x)\n    return x * 2\n"
		require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(src)})))
		payload, _ := etf.Encode(etf.Tuple{etf.Binary("__main__"), etf.Binary("slow"), etf.List{21}, etf.Map{}})
		_, done, err := replies.submit(c, Task, payload)
		require.NoError(t, err)
		for i := 0; i < 20; i++ { // served while the coroutine sleeps
			assert.True(t, etf.Equal(etf.OKTuple(etf.List{}), eval(t, c, "state")))
		}
		assert.True(t, etf.Equal(etf.OKTuple(42), wait(t, done)))
		assert.True(t, etf.Equal(etf.OKTuple(etf.List{21}), eval(t, c, "state")))
		// a plain result is the answer at once
		plain, _ := etf.Encode(etf.Tuple{etf.Binary("operator"), etf.Binary("add"), etf.List{1, 2}, etf.Map{}})
		_, done, err = replies.submit(c, Task, plain)
		require.NoError(t, err)
		assert.True(t, etf.Equal(etf.OKTuple(3), wait(t, done)))
	}
}

// Cancel of a task on the loop: CancelledError in the coroutine, whose
// finally runs, and one answer, {error, {cancelled, _}}.
func TestCancelOfTaskOnTheLoop(t *testing.T) {
	c := newCtx(t, Auto)
	src := "import asyncio\nfin = []\nasync def forever():\n    try:\n        await asyncio.sleep(60)\n    finally:\n        fin.append(1)\n"
	require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(src)})))
	payload, _ := etf.Encode(etf.Tuple{etf.Binary("__main__"), etf.Binary("forever"), etf.List{}, etf.Map{}})
	reply, done, err := replies.submit(c, Task, payload)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	testPool.Cancel(replies.out, reply)
	assert.True(t, etf.Equal(etf.Exception("cancelled", "the task was cancelled"), wait(t, done)))
	assert.True(t, etf.Equal(etf.OKTuple(etf.List{1}), eval(t, c, "fin")))
}

// asyncio.sleep on the context's loop, driven by the executor, sleeps at
// least what it is asked (the time is logged, not asserted: the machines
// are noisy).
func TestLoopTimers(t *testing.T) {
	c := newCtx(t, Auto)
	src := "import asyncio, time\nasync def sleeps():\n    t = time.perf_counter()\n    for _ in range(50):\n        await asyncio.sleep(0.001)\n    return time.perf_counter() - t\n"
	require.True(t, etf.Equal(etf.OK, run(t, c, Exec, etf.Tuple{etf.Binary(src)})))
	res := eval(t, c, "__import__('erlang').run(sleeps())")
	tup, ok := res.(etf.Tuple)
	require.True(t, ok && len(tup) == 2, "%v", res)
	elapsed, ok := tup[1].(float64)
	require.True(t, ok, "%v", res)
	assert.GreaterOrEqual(t, elapsed, 0.05)
	t.Logf("50 x asyncio.sleep(0.001): %.1f ms", elapsed*1000)
}
