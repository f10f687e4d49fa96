package kvserver

import (
	"bufio"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

func frame(t *testing.T, b *kvpb.ReplBatch) []byte {
	t.Helper()
	out := make([]byte, replHeader+b.SizeVT())
	binary.BigEndian.PutUint32(out, uint32(b.SizeVT()))
	_, err := b.MarshalToSizedBufferVT(out[replHeader:])
	require.NoError(t, err)
	return out
}

// TestFrameReaderTakesWhatIsBuffered: the frames that arrived together are
// read without waiting for more; a frame that has not fully arrived is not
// whole, and whole never blocks on the connection.
func TestFrameReaderTakesWhatIsBuffered(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	var burst []byte
	for _, from := range []string{"s1", "s2", "s3"} {
		burst = append(burst, frame(t, &kvpb.ReplBatch{From: from})...)
	}
	last := frame(t, &kvpb.ReplBatch{From: "s4", SentUnixNano: 7})
	go func() {
		_, _ = client.Write(append(burst, last[:3]...)) // net.Pipe: one Read takes it all
	}()
	fr := frameReader{r: bufio.NewReaderSize(server, replReadBuffer), max: 1 << 20}
	for _, want := range []string{"s1", "s2", "s3"} {
		b, err := fr.next()
		require.NoError(t, err)
		require.Equal(t, want, b.From)
		if want != "s3" {
			require.True(t, fr.whole(), "the rest of the burst is buffered")
		}
	}
	done := make(chan bool)
	go func() { done <- fr.whole() }()
	select {
	case whole := <-done:
		require.False(t, whole, "3 bytes of a header are not a frame")
	case <-time.After(5 * time.Second):
		t.Fatal("whole blocked on the connection")
	}
	go func() { _, _ = client.Write(last[3:]) }()
	b, err := fr.next()
	require.NoError(t, err)
	require.Equal(t, "s4", b.From)
	require.EqualValues(t, 7, b.SentUnixNano)
}

// TestFrameReaderRefuses: a frame over the bound and one that is not a
// ReplBatch end the connection's reading with an error.
func TestFrameReaderRefuses(t *testing.T) {
	for name, data := range map[string][]byte{
		"over the bound": {0, 0, 1, 0},
		"not a batch":    {0, 0, 0, 2, 0xff, 0xff},
		"bad utf-8":      frame(t, &kvpb.ReplBatch{From: "\xff"}),
	} {
		t.Run(name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			go func() { _, _ = client.Write(data); _ = client.Close() }()
			fr := frameReader{r: bufio.NewReaderSize(server, replReadBuffer), max: 100}
			_, err := fr.next()
			require.Error(t, err)
		})
	}
}
