package kvserver

import (
	"encoding/binary"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
)

// TestReplMuxRoutes: on the service port a connection that starts with the
// replication preface (of either version) is a peer's, anything else
// gRPC's; the preface is answered, so that a sender knows the server
// speaks the transport; a connection that starts
// like the preface but is not it, or sends a frame over
// max-message-bytes, is closed at once.
func TestReplMuxRoutes(t *testing.T) {
	const handshake = 20 * time.Second // far beyond the test: closes below are the mux's
	c, addr := newGateCluster(t, func(cfg *config.KVServer) {
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout = handshake, handshake
	})
	srv := c.srv("s1")

	t.Run("not the preface", func(t *testing.T) {
		conn := silentConn(t, addr)
		_, err := conn.Write([]byte("EHLO example.org\r\n"))
		require.NoError(t, err)
		require.Less(t, waitClosed(t, conn, 10*time.Second), handshake/2)
	})
	t.Run("the preface is answered, the first version's is not", func(t *testing.T) {
		conn := silentConn(t, addr)
		_, err := conn.Write([]byte(replPreface))
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		got := make([]byte, len(replAck))
		_, err = io.ReadFull(conn, got)
		require.NoError(t, err)
		require.Equal(t, replAck, string(got))
		require.NoError(t, conn.Close())

		// A sender of the first version expects no answer and sends
		// frames at once: nothing may arrive for it to misread.
		old := silentConn(t, addr)
		_, err = old.Write([]byte(replPrefaceV1))
		require.NoError(t, err)
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			_, admitted := srv.gate.counts()
			return admitted == 1
		}, "the first version's connection is admitted")
		require.NoError(t, old.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := old.Read(make([]byte, 1))
		require.Zero(t, n)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NoError(t, old.Close())
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			_, admitted := srv.gate.counts()
			return admitted == 0
		}, "closed, it frees its slot")
	})
	t.Run("a peer is admitted until a bad frame", func(t *testing.T) {
		conn := silentConn(t, addr)
		_, err := conn.Write([]byte(replPreface))
		require.NoError(t, err)
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			_, admitted := srv.gate.counts()
			return admitted == 1
		}, "the replication connection is admitted")
		var hdr [replHeader]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(srv.cfg.MaxMessageBytes)+1)
		_, err = conn.Write(hdr[:])
		require.NoError(t, err)
		require.Less(t, waitClosed(t, conn, 10*time.Second), handshake/2, "a frame over max-message-bytes ends it")
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			_, admitted := srv.gate.counts()
			return admitted == 0
		}, "and frees its slot")
	})
	t.Run("gRPC beside it", func(t *testing.T) {
		require.NoError(t, getRingWithin(dialGRPC(t, addr), 5*time.Second))
	})
}
