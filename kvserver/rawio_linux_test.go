package kvserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpPair returns the two ends of a loopback TCP connection, a with raw
// reads and writes.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b = <-done
	require.NotNil(t, b)
	a = withRawIO(raw)
	require.IsType(t, &rawConn{}, a)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

// TestRawConn: raw reads and writes carry every byte in order, wait on
// the poller when the socket is empty or full, keep deadlines, and fail
// as the net package fails (EOF, timeouts, closed connections).
func TestRawConn(t *testing.T) {
	a, b := tcpPair(t)

	// 8 MiB each way is far beyond the socket buffers: writes must wait
	// for room (EAGAIN) and reads for data.
	msg := make([]byte, 8<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		buf, _ := io.ReadAll(io.LimitReader(b, int64(len(msg))))
		got <- buf
	}()
	n, err := a.Write(msg)
	require.NoError(t, err)
	require.Equal(t, len(msg), n)
	require.True(t, bytes.Equal(msg, <-got), "the peer read what was written")

	go func() { _, _ = b.Write(msg) }()
	back, err := io.ReadAll(io.LimitReader(a, int64(len(msg))))
	require.NoError(t, err)
	require.True(t, bytes.Equal(msg, back), "raw reads return what the peer wrote")

	require.NoError(t, a.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = a.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a read past its deadline times out: %v", err)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, a.SetReadDeadline(time.Time{}))

	require.NoError(t, b.Close())
	_, err = a.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the peer's close is EOF")

	require.NoError(t, a.Close())
	_, err = a.Write([]byte("x"))
	require.True(t, errors.Is(err, net.ErrClosed), "a closed connection fails: %v", err)
}
