package port

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
)

func readFrames(t *testing.T, r io.Reader, n int) [][]byte {
	t.Helper()
	br := bufio.NewReader(r)
	frames := make([][]byte, 0, n)
	var hdr [4]byte
	for range n {
		_, err := io.ReadFull(br, hdr[:])
		require.NoError(t, err)
		f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		_, err = io.ReadFull(br, f)
		require.NoError(t, err)
		frames = append(frames, f)
	}
	return frames
}

func TestOutputFramesFromManyWriters(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	out, err := NewOutput(w)
	require.NoError(t, err)
	const writers, each = 8, 500
	big := bytes.Repeat([]byte("x"), 300<<10) // over the buffer: written as it is
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				body := binary.BigEndian.AppendUint32(nil, uint32(j))
				if j%100 == 0 {
					body = append(body, big...)
				}
				out.Send([]byte{byte(i)}, body)
			}
		}()
	}
	frames := readFrames(t, r, writers*each)
	wg.Wait()
	next := make([]uint32, writers)
	for _, f := range frames {
		require.GreaterOrEqual(t, len(f), 5)
		i, j := f[0], binary.BigEndian.Uint32(f[1:5])
		assert.Equal(t, next[i], j, "writer %d's frames in order", i)
		next[i] = j + 1
		if j%100 == 0 {
			assert.Equal(t, big, f[5:])
		} else {
			assert.Len(t, f, 5)
		}
	}
	assert.NoError(t, out.Err())
}

func TestOutputAfterReaderLeft(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	out, err := NewOutput(w)
	require.NoError(t, err)
	r.Close()
	out.Send([]byte("id"), []byte("result")) // EPIPE, not a hang or a signal
	out.Send([]byte("id"), []byte("result")) // dropped
	assert.ErrorIs(t, out.Err(), syscall.EPIPE)
}

// Log's packets are {Dropped, [{Level, Ctx, Caller, Line}]} after the id
// '$log'; at most PYX_LOG_WINDOW are out before an ack, lines that come
// meanwhile share the next one.
func TestOutputLog(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	out, err := NewOutput(w)
	require.NoError(t, err)
	undef := etf.Atom("undefined")
	out.Log("info", 7, []byte("seven"))
	out.Log("warning", 1<<40, []byte("big"))
	out.Log("error", LogSidecar, []byte("pyport")) // waits: two are out
	out.Log("notice", LogNoContext, nil)
	out.LogAck(1)
	want := []etf.Term{
		etf.Tuple{etf.List{}, etf.List{etf.Tuple{etf.Atom("info"), 7, undef, etf.Binary("seven")}}},
		etf.Tuple{etf.List{}, etf.List{etf.Tuple{etf.Atom("warning"), int64(1) << 40, undef, etf.Binary("big")}}},
		etf.Tuple{etf.List{}, etf.List{etf.Tuple{etf.Atom("error"), etf.Atom("sidecar"), undef, etf.Binary("pyport")},
			etf.Tuple{etf.Atom("notice"), undef, undef, etf.Binary("")}}},
	}
	checkLogFrames(t, readFrames(t, r, len(want)), want)

	// Two out again: lines beyond a batch's bound are dropped, counted by
	// level and reported with the next packet.
	out.LogAck(1)
	out.Log("info", 1, []byte("x"))
	line := bytes.Repeat([]byte("y"), 1000)
	for i := 0; i < 100; i++ {
		out.Log("info", 1, line)
	}
	out.Log("debug", 1, []byte("two\nlines")) // dropped too
	kept := 8 * 1024 / (len(line) + 1)        // about: what PYX_LOG_BATCH holds
	dropped := out.LogDropped()
	assert.InDelta(t, float64(100-kept+2), float64(dropped), 3)
	out.LogAck(2)
	frames := readFrames(t, r, 2)
	var d etf.Decoder
	_, n, err := d.DecodePrefix(frames[1])
	require.NoError(t, err)
	body, err := (&etf.Decoder{CopyBinaries: true}).Decode(frames[1][n:])
	require.NoError(t, err)
	b := body.(etf.Tuple)
	counts := b[0].(etf.List) // [{info, N}, {debug, 2}]: emergency first
	require.Len(t, counts, 2)
	assert.True(t, etf.Equal(etf.Tuple{etf.Atom("info"), int64(dropped) - 2}, counts[0]), "%v", counts)
	assert.True(t, etf.Equal(etf.Tuple{etf.Atom("debug"), 2}, counts[1]), "%v", counts)
	assert.Equal(t, 100-(int(dropped)-2), len(b[1].(etf.List)))
}

func checkLogFrames(t *testing.T, frames [][]byte, want []etf.Term) {
	t.Helper()
	for i, f := range frames {
		var d etf.Decoder
		id, n, err := d.DecodePrefix(f)
		require.NoError(t, err)
		assert.Equal(t, etf.Atom("$log"), id)
		body, err := (&etf.Decoder{CopyBinaries: true}).Decode(f[n:])
		require.NoError(t, err)
		assert.True(t, etf.Equal(want[i], body), "%v, not %v", body, want[i])
	}
}

// erlang.send's batches: one frame each while fewer than PYX_SEND_WINDOW
// are out, then batched until an ack, or until any other frame, which
// they never follow.
func TestSendOneway(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	out, err := NewOutput(w)
	require.NoError(t, err)
	entry := func(i int) []byte {
		b, err := etf.Encode(etf.Tuple{etf.Atom("dest"), i})
		require.NoError(t, err)
		return b[1:]
	}
	sends := func(f []byte) etf.Term {
		var d etf.Decoder
		id, n, err := d.DecodePrefix(f)
		require.NoError(t, err)
		require.Equal(t, etf.Atom("$send"), id)
		body, err := d.Decode(f[n:])
		require.NoError(t, err)
		return body
	}
	one := func(i int) etf.Term { return etf.List{etf.Tuple{etf.Atom("dest"), i}} }
	for i := 0; i < 4; i++ {
		out.SendOneway(entry(i))
	}
	for i, f := range readFrames(t, r, 4) {
		assert.True(t, etf.Equal(one(i), sends(f)), "%v", sends(f))
	}
	out.SendOneway(entry(4)) // no credit: they wait in the batch
	out.SendOneway(entry(5))
	out.Send([]byte("reply"), nil) // but not behind a later frame
	f := readFrames(t, r, 2)
	assert.True(t, etf.Equal(etf.List{etf.Tuple{etf.Atom("dest"), 4}, etf.Tuple{etf.Atom("dest"), 5}}, sends(f[0])))
	assert.Equal(t, []byte("reply"), f[1])
	out.SendOneway(entry(6))
	out.SendAck(5) // the batch goes with the ack
	assert.True(t, etf.Equal(one(6), sends(readFrames(t, r, 1)[0])))
}

// drainSends reads r until it has seen n erlang.send entries, acking
// each '$send' frame as the port owner does, and checks that entries
// {dest, I} come in order; other frames are skipped.
func drainSends(t *testing.T, r io.Reader, out *Output, n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(r)
		var hdr [4]byte
		for seen := 0; seen < n; {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				t.Error(err)
				return
			}
			f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(br, f); err != nil {
				t.Error(err)
				return
			}
			var d etf.Decoder
			id, k, err := d.DecodePrefix(f)
			if err != nil || id != etf.Atom("$send") {
				continue
			}
			body, err := d.Decode(f[k:])
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range body.(etf.List) {
				if !etf.Equal(etf.Tuple{etf.Atom("dest"), seen}, e) {
					t.Errorf("entry %v, expected %d", e, seen)
				}
				seen++
			}
			out.SendAck(1)
		}
	}()
	return done
}

// The share of sends (output.h): a send loop is paced while another
// thread writes frames, and only then; nothing is lost or reordered.
func TestSendPace(t *testing.T) {
	const n = 3000
	entry := func(i int) []byte {
		b, err := etf.Encode(etf.Tuple{etf.Atom("dest"), i})
		require.NoError(t, err)
		return b[1:]
	}
	// sendLoop makes n sends from a thread of its own, after one frame of
	// its own when own is true, while another thread writes a frame every
	// 50 us when busy is true; it gives how many were paced.
	sendLoop := func(t *testing.T, pace int64, own, busy bool) uint64 {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		out, err := NewOutput(w)
		require.NoError(t, err)
		out.SetSendPace(pace)
		drained := drainSends(t, r, out, n)
		stop := make(chan struct{})
		var other sync.WaitGroup
		if busy {
			other.Add(1)
			started := make(chan struct{})
			go func() {
				defer other.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				out.Send([]byte("reply"), nil)
				close(started)
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Microsecond):
						out.Send([]byte("reply"), nil)
					}
				}
			}()
			<-started
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if own {
				out.Send([]byte("reply"), nil)
			}
			for i := range n {
				out.SendOneway(entry(i))
			}
		}()
		<-sent
		close(stop)
		other.Wait()
		out.Send([]byte("last"), nil) // the batch left goes before it
		<-drained
		return out.SendPaced()
	}
	t.Run("others served", func(t *testing.T) {
		assert.Greater(t, sendLoop(t, 20000, false, true), uint64(0))
	})
	t.Run("alone", func(t *testing.T) {
		assert.Equal(t, uint64(0), sendLoop(t, 20000, false, false))
	})
	t.Run("its own frame last", func(t *testing.T) {
		assert.Equal(t, uint64(0), sendLoop(t, 20000, true, false))
	})
	t.Run("no pace", func(t *testing.T) {
		assert.Equal(t, uint64(0), sendLoop(t, 0, false, true))
	})
}
