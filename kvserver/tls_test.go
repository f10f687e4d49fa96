package kvserver

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// certsDir creates a CA and certificates for s1..s3, the ECS and a client.
func certsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	var servers []tlsutil.Server
	for _, id := range []string{"s1", "s2", "s3"} {
		servers = append(servers, tlsutil.Server{ID: id, Hosts: []string{"127.0.0.1"}})
	}
	_, err := tlsutil.InitDir(dir, tlsutil.DirSpec{
		ECSHosts: []string{"127.0.0.1"}, Servers: servers, Clients: []string{tlsutil.ClientName}, Validity: time.Hour,
	})
	require.NoError(t, err)
	return dir
}

func dialWith(t *testing.T, f tlsutil.Files) grpc.DialOption {
	t.Helper()
	opt, err := tlsutil.DialOption(f)
	require.NoError(t, err)
	return opt
}

// newTLSCluster starts n servers with mutual TLS between everyone; the test
// talks to them as a member (the ECS). The package's etcd stays plaintext.
func newTLSCluster(t *testing.T, n int, configure func(*config.KVServer)) (*tcluster, string) {
	t.Helper()
	dir := certsDir(t)
	c := newClusterWith(t, n, func(cfg *config.KVServer) {
		cfg.CertsDir = dir
		cfg.EtcdEndpoints = []string{"http://" + testEtcdEndpoints[0]}
		if configure != nil {
			configure(cfg)
		}
	}, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ECSName)))
	return c, dir
}

func TestTLSReplicatesAndGuardsMemberServices(t *testing.T) {
	c, dir := newTLSCluster(t, 3, nil)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := w.do(ctx, headOf("k"), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Put(ctx, &kvpb.PutRequest{Header: w.header(), Key: []byte("k"), Value: []byte("v")})
	})
	require.NoError(t, err, "a write replicates over mutual TLS")

	client, err := grpc.NewClient(c.node("s1").addr, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ClientName)))
	require.NoError(t, err)
	defer client.Close()
	t.Run("client certificate may not call member services", func(t *testing.T) {
		_, err := kvpb.NewAdminClient(client).Digest(ctx, &kvpb.DigestRequest{})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		snap, err := kvpb.NewReplicationClient(client).Snapshot(ctx, &kvpb.SnapshotRequest{})
		require.NoError(t, err)
		_, err = snap.Recv()
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		st, err := kvpb.NewReplicationClient(client).Replicate(ctx)
		require.NoError(t, err)
		_, err = st.CloseAndRecv()
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		_, err = kvpb.NewKVClient(client).GetRing(ctx, &kvpb.GetRingRequest{})
		require.NoError(t, err, "the KV service is for clients")
	})
	t.Run("client certificate may not open a replication connection", func(t *testing.T) {
		cfg, err := tlsutil.ClientConfig(tlsutil.DirFiles(dir, tlsutil.ClientName))
		require.NoError(t, err)
		cfg.NextProtos, cfg.ServerName = []string{replALPN}, "127.0.0.1"
		conn, err := tls.Dial("tcp", c.node("s1").addr, cfg)
		require.NoError(t, err, "the handshake succeeds: the certificate is the CA's")
		defer conn.Close()
		require.Equal(t, replALPN, conn.ConnectionState().NegotiatedProtocol)
		waitClosed(t, conn, 10*time.Second)
	})
	t.Run("member certificate may", func(t *testing.T) {
		_, err := c.admin("s1").Digest(ctx, &kvpb.DigestRequest{})
		require.NoError(t, err)
	})
	t.Run("plaintext refused", func(t *testing.T) {
		cc, err := grpc.NewClient(c.node("s1").addr, dialWith(t, tlsutil.Files{}))
		require.NoError(t, err)
		defer cc.Close()
		_, err = kvpb.NewKVClient(cc).GetRing(ctx, &kvpb.GetRingRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	})
	t.Run("certificate of another CA refused", func(t *testing.T) {
		other := certsDir(t)
		f := tlsutil.DirFiles(other, tlsutil.ClientName)
		f.CA = tlsutil.DirFiles(dir, tlsutil.ClientName).CA
		cc, err := grpc.NewClient(c.node("s1").addr, dialWith(t, f))
		require.NoError(t, err)
		defer cc.Close()
		_, err = kvpb.NewKVClient(cc).GetRing(ctx, &kvpb.GetRingRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	})
}
