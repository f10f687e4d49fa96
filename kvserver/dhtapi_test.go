package kvserver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvserver/dht"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDHTAPI: on a cluster with TLS and users, a key put through one
// server's DHT API reads through another's, lives in the DHT namespace
// (no user sees it), and only members may ask for that namespace.
func TestDHTAPI(t *testing.T) {
	c := newAuthCluster(t, func(cfg *config.KVServer) {
		cfg.DHTListen, cfg.DHTAllowInsecure = "127.0.0.1:0", true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var key dht.Key
	copy(key[:], "k")

	put, err := dht.Encode(dht.Put(key, []byte("dht value"), 0, 3))
	require.NoError(t, err)
	get, err := dht.Encode(dht.Get(key))
	require.NoError(t, err)
	at := func(id string) net.Conn {
		conn, err := net.Dial("tcp", c.srv(id).DHTAddr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		return conn
	}
	c1, c3 := at("s1"), at("s3")
	_, err = c1.Write(put)
	require.NoError(t, err)
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		_, err := c3.Write(get)
		require.NoError(t, err)
		m, err := dht.ReadMessage(c3)
		require.NoError(t, err)
		return m.Type == dht.TypeSuccess && string(m.Value) == "dht value"
	}, "the put through s1's DHT API reads through s3's")

	alice, err := c.login(t, "s2", "alice", "alice-pw")
	require.NoError(t, err)
	resp, err := c.kvAs(t, alice, string(key[:]), nil, false)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_NOT_FOUND, resp.Status, "a user does not see the DHT's keys")

	h := func(ns string) *kvpb.RequestHeader { return &kvpb.RequestHeader{Namespace: ns} }
	t.Run("a client certificate may not ask for the DHT namespace", func(t *testing.T) {
		dir := c.srv("s1").cfg.CertsDir
		conn, err := grpc.NewClient(c.node("s3").addr, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ClientName)))
		require.NoError(t, err)
		defer conn.Close()
		_, err = kvpb.NewKVClient(conn).Get(ctx, &kvpb.GetRequest{Header: h(dht.Namespace), Key: key[:]})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	})
	t.Run("a member may not ask for a user's namespace", func(t *testing.T) {
		_, err := c.kv("s3").Get(ctx, &kvpb.GetRequest{Header: h(c.userNS(t, "alice")), Key: key[:]})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	})
}
