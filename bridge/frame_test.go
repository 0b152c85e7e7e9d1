package bridge

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFrameReaderGrowsLargeFrames(t *testing.T) {
	big := bytes.Repeat([]byte{9}, 3<<20+5)
	stream := append(binary.BigEndian.AppendUint32(nil, uint32(len(big))), big...)
	f := NewFrameReader(bytes.NewReader(stream), 0)
	got, err := f.Next()
	require.NoError(t, err)
	assert.Equal(t, big, got)
	// a length that lies: the stream ends first, and no 512 MiB buffer
	f = NewFrameReader(bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, 500<<20), 1, 2, 3)), 0)
	_, err = f.Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}
