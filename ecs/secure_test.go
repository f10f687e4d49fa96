package ecs

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// etcdGet reads key through a client of endpoints with TLS files f.
func etcdGet(t *testing.T, endpoints []string, f tlsutil.Files, key string) (*clientv3.GetResponse, error) {
	t.Helper()
	tc, err := tlsutil.EtcdConfig(f, endpoints)
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tc, DialTimeout: time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cli.Get(ctx, key)
}

// waitRing waits until the cluster's ring is in etcd and returns it.
func waitRing(t *testing.T, endpoints []string, f tlsutil.Files, cluster string) *ringmeta.Ring {
	t.Helper()
	var ring *ringmeta.Ring
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		resp, err := etcdGet(t, endpoints, f, etcdkeys.Ring(cluster))
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		ring, err = ringmeta.Unmarshal(resp.Kvs[0].Value)
		return err == nil
	}, "ring of %s in etcd", cluster)
	return ring
}

// TestSecureServer starts a --secure ECS: it creates its certificates,
// serves etcd only to members over TLS, creates the cluster with
// authentication and a token key, and refuses to restart the cluster
// without authentication.
func TestSecureServer(t *testing.T) {
	cfg := testConfig(16, 1, 8)
	cfg.Servers, cfg.DataDir, cfg.Secure = 0, t.TempDir(), true
	cfg.EtcdPort = testutil.FreePortRange(t, 2)
	cfg.HTTP = testutil.FreeAddr(t)
	lg := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	srv, err := New(cfg, lg, io.Discard)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	certs := filepath.Join(cfg.DataDir, "certs")
	require.Contains(t, srv.SecuritySummary(), certs)

	eps, member := srv.EtcdEndpoints(), tlsutil.DirFiles(certs, tlsutil.ECSName)
	require.True(t, waitRing(t, eps, member, cfg.Cluster).Auth)
	resp, err := etcdGet(t, eps, member, etcdkeys.Auth(cfg.Cluster))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)

	_, err = etcdGet(t, eps, tlsutil.DirFiles(certs, tlsutil.ClientName), etcdkeys.Auth(cfg.Cluster))
	require.Error(t, err, "a client certificate must not read the token key")
	_, err = etcdGet(t, eps, tlsutil.Files{}, etcdkeys.Ring(cfg.Cluster))
	require.Error(t, err, "plaintext is refused")

	srv.Stop()
	stopped = true
	plain := cfg
	plain.Secure = false
	srv2, err := New(plain, lg, io.Discard)
	require.NoError(t, err)
	err = srv2.Start()
	require.ErrorIs(t, err, ErrAuthMismatch)
	require.ErrorContains(t, err, "created with authentication on")
}

// TestSecureServerExternalEtcd runs a --secure ECS on an external etcd that
// has a CA of its own, given with the etcd-* files (the multi-host setup).
func TestSecureServerExternalEtcd(t *testing.T) {
	etcdCA := filepath.Join(t.TempDir(), "etcd-ca")
	_, err := tlsutil.InitDir(etcdCA, tlsutil.DirSpec{ECSHosts: []string{"127.0.0.1"}, Validity: time.Hour})
	require.NoError(t, err)
	server := tlsutil.DirFiles(etcdCA, tlsutil.ECSName) // etcd's own certificate, and the clients'
	_, endpoints := testutil.StartEtcd(t, testutil.WithEtcdTLS(server))

	cfg := testConfig(16, 1, 8)
	cfg.Servers, cfg.DataDir, cfg.Secure = 0, t.TempDir(), true
	cfg.EtcdEndpoints = endpoints
	cfg.EtcdCACert, cfg.EtcdCert, cfg.EtcdKey = server.CA, server.Cert, server.Key
	cfg.HTTP = testutil.FreeAddr(t)
	srv, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), io.Discard)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Stop()
	require.True(t, waitRing(t, cfg.EtcdEndpoints, server, cfg.Cluster).Auth)
	_, err = etcdGet(t, cfg.EtcdEndpoints, tlsutil.DirFiles(filepath.Join(cfg.DataDir, "certs"), tlsutil.ECSName), etcdkeys.Ring(cfg.Cluster))
	require.Error(t, err, "the cluster's own certificates are not etcd's")
}
