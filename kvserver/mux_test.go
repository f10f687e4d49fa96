package kvserver

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
)

// TestReplMuxRoutes: on the service port a connection that starts with the
// replication preface is a peer's, anything else gRPC's; one that starts
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
