package ecs

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"
)

func TestUsers(t *testing.T) {
	cli := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{"bob", "alice"} {
		u, err := auth.NewUser(n, "pw", bcrypt.MinCost)
		require.NoError(t, err)
		require.NoError(t, AddUser(ctx, cli, "c", u))
	}
	u, _ := auth.NewUser("bob", "other", bcrypt.MinCost)
	require.ErrorIs(t, AddUser(ctx, cli, "c", u), ErrUserExists)
	names, err := ListUsers(ctx, cli, "c")
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "bob"}, names)
	require.NoError(t, RemoveUser(ctx, cli, "c", "bob"))
	require.ErrorIs(t, RemoveUser(ctx, cli, "c", "bob"), ErrNoUser)
	require.ErrorIs(t, RemoveUser(ctx, cli, "c", "../x"), auth.ErrBadUser)
	names, err = ListUsers(ctx, cli, "c")
	require.NoError(t, err)
	require.Equal(t, []string{"alice"}, names)

	t.Run("auth config keeps its key", func(t *testing.T) {
		read := func() auth.Config {
			resp, err := cli.Get(ctx, etcdkeys.Auth("c"))
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1)
			c, err := auth.UnmarshalConfig(resp.Kvs[0].Value)
			require.NoError(t, err)
			return c
		}
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Minute))
		first := read()
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Minute))
		require.Equal(t, first, read())
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Hour))
		second := read()
		require.Equal(t, first.Key, second.Key, "a new lifetime keeps the key (and the tokens)")
		require.Equal(t, time.Hour.Milliseconds(), second.TokenTTLMs)
	})
}

// TestSecureServer starts a --secure ECS: it creates its certificates,
// serves etcd only to members over TLS, creates the cluster with
// authentication and a token key, and refuses to restart the cluster
// without authentication.
func TestSecureServer(t *testing.T) {
	cfg := testConfig(16, 1, 8)
	cfg.Servers, cfg.DataDir, cfg.Secure = 0, t.TempDir(), true
	cfg.EtcdPort = freePortPair(t)
	cfg.HTTP = "127.0.0.1:" + strconv.Itoa(freePort(t))
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

	dial := func(f tlsutil.Files) *clientv3.Client {
		tc, err := tlsutil.EtcdConfig(f, srv.EtcdEndpoints())
		require.NoError(t, err)
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.EtcdEndpoints(), TLS: tc, DialTimeout: time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	get := func(cli *clientv3.Client, key string) (*clientv3.GetResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return cli.Get(ctx, key)
	}
	member := dial(tlsutil.DirFiles(certs, tlsutil.ECSName))
	var ring *ringmeta.Ring
	require.Eventually(t, func() bool {
		resp, err := get(member, etcdkeys.Ring(cfg.Cluster))
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		ring, err = ringmeta.Unmarshal(resp.Kvs[0].Value)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.True(t, ring.Auth)
	resp, err := get(member, etcdkeys.Auth(cfg.Cluster))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)

	_, err = get(dial(tlsutil.DirFiles(certs, tlsutil.ClientName)), etcdkeys.Auth(cfg.Cluster))
	require.Error(t, err, "a client certificate must not read the token key")
	_, err = get(dial(tlsutil.Files{}), etcdkeys.Ring(cfg.Cluster))
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
