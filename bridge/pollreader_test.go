package bridge

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pollPipe(t *testing.T, spin time.Duration) (*PollReader, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	pr, err := NewPollReader(int(r.Fd()), spin)
	require.NoError(t, err)
	return pr, w
}

func TestPollReaderReadsWhileSpinningAndAfterSleeping(t *testing.T) {
	for _, spin := range []time.Duration{0, time.Millisecond, time.Second} {
		pr, w := pollPipe(t, spin)
		go func() {
			time.Sleep(20 * time.Millisecond) // past a 1 ms spin: poll(2) wakes it
			_, _ = w.Write([]byte("late"))
			_, _ = w.Write([]byte("-more"))
			w.Close()
		}()
		got, err := io.ReadAll(pr)
		require.NoError(t, err, "spin %v", spin)
		assert.Equal(t, "late-more", string(got), "spin %v", spin)
	}
}

func TestPollReaderUnderFrameReader(t *testing.T) {
	pr, w := pollPipe(t, 100*time.Microsecond)
	const n = 2000
	go func() {
		for i := range n {
			payload := make([]byte, i%700)
			for j := range payload {
				payload[j] = byte(i)
			}
			_, _ = w.Write(append(AppendFrameHeader(nil, len(payload)), payload...))
		}
		w.Close()
	}()
	frames := NewFrameReader(pr, 0)
	for i := range n {
		f, err := frames.Next()
		require.NoError(t, err)
		require.Len(t, f, i%700)
		for _, b := range f {
			require.Equal(t, byte(i), b)
		}
	}
	_, err := frames.Next()
	assert.Equal(t, io.EOF, err)
}
