package config

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func validKVServer() KVServer {
	c := DefaultKVServer()
	c.ID = "s1"
	c.Listen = "127.0.0.1:5001"
	c.DataDir = "/tmp/s1"
	return c
}

func TestDefaultsValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  interface{ Validate() error }
	}{
		{name: "ecs", cfg: DefaultECS()},
		{name: "ecs with external etcd", cfg: func() ECS {
			c := DefaultECS()
			c.EtcdEndpoints = []string{"http://10.0.0.1:2379"}
			c.EtcdPort = 0
			return c
		}()},
		{name: "ecs no local servers", cfg: func() ECS { c := DefaultECS(); c.Servers = 0; return c }()},
		{name: "kvserver with required fields", cfg: validKVServer()},
		{name: "kvserver port 0 and advertise", cfg: func() KVServer { c := validKVServer(); c.Listen = ":0"; c.Advertise = "h:5001"; return c }()},
		{name: "client", cfg: DefaultClient()},
		{name: "client with servers only", cfg: func() Client { c := DefaultClient(); c.Servers = []string{"h:1"}; c.EtcdEndpoints = nil; return c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.cfg.Validate())
		})
	}
}

func TestDefaultKVServerNeedsIdentity(t *testing.T) {
	err := DefaultKVServer().Validate()
	require.ErrorIs(t, err, ErrInvalid)
	for _, field := range []string{"id:", "listen:", "data-dir:"} {
		require.Contains(t, err.Error(), field)
	}
}

func TestValidateNamesField(t *testing.T) {
	ecs := func(f func(*ECS)) interface{ Validate() error } { c := DefaultECS(); f(&c); return c }
	kvs := func(f func(*KVServer)) interface{ Validate() error } { c := validKVServer(); f(&c); return c }
	cli := func(f func(*Client)) interface{ Validate() error } { c := DefaultClient(); f(&c); return c }
	tests := []struct {
		name  string
		cfg   interface{ Validate() error }
		field string
	}{
		{name: "ecs partitions 1000", cfg: ecs(func(c *ECS) { c.Partitions = 1000 }), field: "partitions"},
		{name: "ecs partitions 0", cfg: ecs(func(c *ECS) { c.Partitions = 0 }), field: "partitions"},
		{name: "ecs partitions 65536", cfg: ecs(func(c *ECS) { c.Partitions = 65536 }), field: "partitions"},
		{name: "ecs replicas 0", cfg: ecs(func(c *ECS) { c.Replicas = 0 }), field: "replicas"},
		{name: "ecs initial servers -1", cfg: ecs(func(c *ECS) { c.InitialServers = -1 }), field: "initial-servers"},
		{name: "ecs replicas 8", cfg: ecs(func(c *ECS) { c.Replicas = 8 }), field: "replicas"},
		{name: "ecs base-port 70000", cfg: ecs(func(c *ECS) { c.BasePort = 70000 }), field: "base-port"},
		{name: "ecs base-port 0", cfg: ecs(func(c *ECS) { c.BasePort = 0 }), field: "base-port"},
		{name: "ecs log-level loud", cfg: ecs(func(c *ECS) { c.LogLevel = "loud" }), field: "log-level"},
		{name: "ecs cluster with space", cfg: ecs(func(c *ECS) { c.Cluster = "bad name" }), field: "cluster"},
		{name: "ecs cluster empty", cfg: ecs(func(c *ECS) { c.Cluster = "" }), field: "cluster"},
		{name: "ecs cluster with slash", cfg: ecs(func(c *ECS) { c.Cluster = "a/b" }), field: "cluster"},
		{name: "ecs lease-ttl 10ms", cfg: ecs(func(c *ECS) { c.LeaseTTL = 10 * time.Millisecond }), field: "lease-ttl"},
		{name: "ecs ready-timeout 0", cfg: ecs(func(c *ECS) { c.ReadyTimeout = 0 }), field: "ready-timeout"},
		{name: "ecs data-dir empty", cfg: ecs(func(c *ECS) { c.DataDir = "" }), field: "data-dir"},
		{name: "ecs servers negative", cfg: ecs(func(c *ECS) { c.Servers = -1 }), field: "servers"},
		{name: "ecs servers 1001", cfg: ecs(func(c *ECS) { c.Servers = 1001; c.BasePort = 2000 }), field: "servers"},
		{name: "ecs host not an ip", cfg: ecs(func(c *ECS) { c.Host = "localhost" }), field: "host"},
		{name: "ecs etcd-port 0 when embedded", cfg: ecs(func(c *ECS) { c.EtcdPort = 0 }), field: "etcd-port"},
		{name: "ecs etcd-port 65535 when embedded", cfg: ecs(func(c *ECS) { c.EtcdPort = 65535 }), field: "etcd-port"},
		{name: "ecs etcd-endpoints bad", cfg: ecs(func(c *ECS) { c.EtcdEndpoints = []string{"nope"} }), field: "etcd-endpoints"},
		{name: "ecs http bad", cfg: ecs(func(c *ECS) { c.HTTP = "9400" }), field: "http"},
		{name: "ecs max-key-bytes 0", cfg: ecs(func(c *ECS) { c.MaxKeyBytes = 0 }), field: "max-key-bytes"},
		{name: "ecs max-value-bytes huge", cfg: ecs(func(c *ECS) { c.MaxValueBytes = 1 << 30 }), field: "max-value-bytes"},
		{name: "ecs probe-interval 1ms", cfg: ecs(func(c *ECS) { c.ProbeInterval = time.Millisecond }), field: "probe-interval"},
		{name: "ecs probe-timeout 0", cfg: ecs(func(c *ECS) { c.ProbeTimeout = 0 }), field: "probe-timeout"},
		{name: "ecs probe-failures 0", cfg: ecs(func(c *ECS) { c.ProbeFailures = 0 }), field: "probe-failures"},
		{name: "ecs probe-failures 101", cfg: ecs(func(c *ECS) { c.ProbeFailures = 101 }), field: "probe-failures"},
		{name: "ecs max-moves 0", cfg: ecs(func(c *ECS) { c.MaxMoves = 0 }), field: "max-moves"},
		{name: "ecs dht-base-port 65535 for 5", cfg: ecs(func(c *ECS) { c.DHTBasePort = 65535 }), field: "dht-base-port"},
		{name: "ecs dht-base-port secure", cfg: ecs(func(c *ECS) { c.DHTBasePort, c.Secure = 7001, true }), field: "dht-base-port"},
		{name: "ecs resp-base-port 65535 for 5", cfg: ecs(func(c *ECS) { c.RESPBasePort = 65535 }), field: "resp-base-port"},
		{name: "ecs resp-base-port secure", cfg: ecs(func(c *ECS) { c.RESPBasePort, c.Secure = 6380, true }), field: "resp-base-port"},
		{name: "ecs max-moves 10001", cfg: ecs(func(c *ECS) { c.MaxMoves = 10001 }), field: "max-moves"},
		{name: "kvserver missing id", cfg: kvs(func(c *KVServer) { c.ID = "" }), field: "id"},
		{name: "kvserver missing listen", cfg: kvs(func(c *KVServer) { c.Listen = "" }), field: "listen"},
		{name: "kvserver listen port text", cfg: kvs(func(c *KVServer) { c.Listen = "h:http" }), field: "listen"},
		{name: "kvserver missing data-dir", cfg: kvs(func(c *KVServer) { c.DataDir = "" }), field: "data-dir"},
		{name: "kvserver bad advertise", cfg: kvs(func(c *KVServer) { c.Advertise = "h" }), field: "advertise"},
		{name: "kvserver bad metrics", cfg: kvs(func(c *KVServer) { c.Metrics = "h:99999" }), field: "metrics"},
		{name: "kvserver no etcd", cfg: kvs(func(c *KVServer) { c.EtcdEndpoints = nil }), field: "etcd-endpoints"},
		{name: "kvserver lease-ttl", cfg: kvs(func(c *KVServer) { c.LeaseTTL = time.Millisecond }), field: "lease-ttl"},
		{name: "kvserver cache-entries", cfg: kvs(func(c *KVServer) { c.CacheEntries = -1 }), field: "cache-entries"},
		{name: "kvserver cache-bytes", cfg: kvs(func(c *KVServer) { c.CacheBytes = -1 }), field: "cache-bytes"},
		{name: "kvserver log-level", cfg: kvs(func(c *KVServer) { c.LogLevel = "WARN" }), field: "log-level"},
		{name: "client bad server addr", cfg: cli(func(c *Client) { c.Servers = []string{"127.0.0.1:5001", "nohost"} }), field: "server"},
		{name: "client no servers no etcd", cfg: cli(func(c *Client) { c.EtcdEndpoints = nil }), field: "etcd-endpoints"},
		{name: "client dial-timeout 0", cfg: cli(func(c *Client) { c.DialTimeout = 0 }), field: "dial-timeout"},
		{name: "client request-timeout negative", cfg: cli(func(c *Client) { c.RequestTimeout = -time.Second }), field: "request-timeout"},
		{name: "client cluster", cfg: cli(func(c *Client) { c.Cluster = "bad name" }), field: "cluster"},
		{name: "client read-mode", cfg: cli(func(c *Client) { c.ReadMode = "any" }), field: "read-mode"},
		{name: "client coords NaN", cfg: cli(func(c *Client) { c.Coords = []float64{1, math.NaN()} }), field: "coords"},
		{name: "kvserver coords too many", cfg: kvs(func(c *KVServer) { c.Coords = make([]float64, 9) }), field: "coords"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), "config: invalid: "+tt.field+": ")
			require.Len(t, unwrapAll(err), 1, "exactly one problem expected: %v", err)
		})
	}
}

func TestValidateBasePortBoundary(t *testing.T) {
	// Server i listens on base-port+i-1 and serves metrics on
	// base-port+1000+i-1: with 5 servers the last metrics port is
	// base-port+1004, which must be <= 65535.
	tests := []struct {
		name     string
		basePort int
		wantErr  bool
	}{
		{name: "last metrics port 65535", basePort: 65535 - 1004},
		{name: "last metrics port 65536", basePort: 65536 - 1004, wantErr: true},
		{name: "lowest port", basePort: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultECS()
			c.Servers = 5
			c.BasePort = tt.basePort
			err := c.Validate()
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), "base-port")
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := DefaultECS()
	c.Partitions = 1000
	c.Replicas = 0
	c.LogLevel = "loud"
	c.Cluster = "bad name"
	err := c.Validate()
	require.ErrorIs(t, err, ErrInvalid)
	require.Len(t, unwrapAll(err), 4, "%v", err)
	for _, field := range []string{"partitions", "replicas", "log-level", "cluster"} {
		require.Contains(t, err.Error(), field+": ")
	}

	k := KVServer{}
	err = k.Validate()
	require.ErrorIs(t, err, ErrInvalid)
	for _, field := range []string{"id", "listen", "data-dir", "cluster", "etcd-endpoints", "lease-ttl", "log-level"} {
		require.Contains(t, err.Error(), field+": ")
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // inspecting the join itself
		return j.Unwrap()
	}
	return []error{err}
}

func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "s1.crt", "s1.key", "client.crt", "client.key"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	kv := func(mut func(*KVServer)) error {
		c := DefaultKVServer()
		c.ID, c.Listen, c.DataDir = "s1", "127.0.0.1:1", "/d"
		mut(&c)
		return c.Validate()
	}
	tests := []struct {
		name    string
		mut     func(*KVServer)
		wantErr string
	}{
		{name: "plaintext", mut: func(*KVServer) {}},
		{name: "certs dir", mut: func(c *KVServer) { c.CertsDir = dir }},
		{name: "missing certs dir", mut: func(c *KVServer) { c.CertsDir = filepath.Join(dir, "none") }, wantErr: "certs-dir: "},
		{name: "server without its certificate", mut: func(c *KVServer) { c.ID, c.CertsDir = "s2", dir }, wantErr: "cert: cannot read"},
		{name: "files one by one", mut: func(c *KVServer) {
			c.CACert, c.Cert, c.Key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "s1.crt"), filepath.Join(dir, "s1.key")
		}},
		{name: "cert without key", mut: func(c *KVServer) {
			c.CACert, c.Cert = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "s1.crt")
		}, wantErr: "key: must be set"},
		{name: "missing etcd CA", mut: func(c *KVServer) { c.CertsDir, c.EtcdCACert = dir, filepath.Join(dir, "etcd.crt") }, wantErr: "etcd-cacert: cannot read"},
		{name: "no streams", mut: func(c *KVServer) { c.MaxStreams = 0 }, wantErr: "max-streams: "},
		{name: "negative rate", mut: func(c *KVServer) { c.RateLimit = -1 }, wantErr: "rate-limit: "},
		{name: "negative pending connections", mut: func(c *KVServer) { c.MaxPendingConnections = -1 }, wantErr: "max-pending-connections: must be >= 0"},
		{name: "no handshake timeout", mut: func(c *KVServer) { c.HandshakeTimeout = 0 }, wantErr: "handshake-timeout: must be at least 10ms"},
		{name: "first request before handshake", mut: func(c *KVServer) { c.FirstRequestTimeout = time.Second }, wantErr: "first-request-timeout: must be at least handshake-timeout (5s), got 1s"},
		{name: "idle timeout never", mut: func(c *KVServer) { c.IdleTimeout = 0 }},
		{name: "sync delay never", mut: func(c *KVServer) { c.SyncDelay = 0 }},
		{name: "negative sync delay", mut: func(c *KVServer) { c.SyncDelay = -time.Microsecond }, wantErr: "sync-delay: must be between 0 (never) and 10ms"},
		{name: "sync delay too long", mut: func(c *KVServer) { c.SyncDelay = time.Second }, wantErr: "sync-delay: must be between 0 (never) and 10ms, got 1s"},
		{name: "idle timeout too short", mut: func(c *KVServer) { c.IdleTimeout = time.Millisecond }, wantErr: "idle-timeout: must be 0 (never) or at least 1s"},
		{name: "no batch in flight", mut: func(c *KVServer) { c.MaxBatchInflight = 0 }, wantErr: "max-batch-inflight: must be at least 1"},
		{name: "dht api", mut: func(c *KVServer) { c.DHTListen = "127.0.0.1:7001" }},
		{name: "resp", mut: func(c *KVServer) { c.RESPListen = "127.0.0.1:6380" }},
		{name: "resp bad address", mut: func(c *KVServer) { c.RESPListen = "6380" }, wantErr: "resp-listen: must be host:port"},
		{name: "resp with TLS", mut: func(c *KVServer) { c.RESPListen, c.CertsDir = "127.0.0.1:6380", dir }, wantErr: "resp-listen: the Redis protocol front door is plaintext"},
		{name: "resp with TLS allowed", mut: func(c *KVServer) { c.RESPListen, c.CertsDir, c.RESPAllowInsecure = "127.0.0.1:6380", dir, true }},
		{name: "resp negative connections", mut: func(c *KVServer) { c.RESPListen, c.RESPMaxConnections = "127.0.0.1:6380", -1 }, wantErr: "resp-max-connections: must be >= 0"},
		{name: "resp idle timeout too short", mut: func(c *KVServer) { c.RESPListen, c.RESPIdleTimeout = "127.0.0.1:6380", time.Millisecond }, wantErr: "resp-idle-timeout: must be 0 (never) or at least 1s"},
		{name: "dht api bad address", mut: func(c *KVServer) { c.DHTListen = "7001" }, wantErr: "dht-listen: must be host:port"},
		{name: "dht api with TLS", mut: func(c *KVServer) { c.DHTListen, c.CertsDir = "127.0.0.1:7001", dir }, wantErr: "dht-listen: the DHT API is plaintext"},
		{name: "dht api with TLS allowed", mut: func(c *KVServer) { c.DHTListen, c.CertsDir, c.DHTAllowInsecure = "127.0.0.1:7001", dir, true }},
		{name: "dht api no requests in flight", mut: func(c *KVServer) { c.DHTListen, c.DHTMaxInflight = "127.0.0.1:7001", 0 }, wantErr: "dht-max-inflight: must be at least 1"},
		{name: "dht api negative connections", mut: func(c *KVServer) { c.DHTListen, c.DHTMaxConnections = "127.0.0.1:7001", -1 }, wantErr: "dht-max-connections: must be >= 0"},
		{name: "dht api idle timeout too short", mut: func(c *KVServer) { c.DHTListen, c.DHTIdleTimeout = "127.0.0.1:7001", time.Millisecond }, wantErr: "dht-idle-timeout: must be 0 (never) or at least 1s"},
		{name: "tiny batch queue", mut: func(c *KVServer) { c.MaxBatchQueuedBytes = 1000 }, wantErr: "max-batch-queued-bytes: must be at least 65536"},
		{name: "no batch stall timeout", mut: func(c *KVServer) { c.BatchStallTimeout = 0 }, wantErr: "batch-stall-timeout: must be at least 10ms"},
		{name: "no scan page keys", mut: func(c *KVServer) { c.ScanMaxPageKeys = 0 }, wantErr: "scan-max-page-keys: must be at least 1"},
		{name: "tiny scan page", mut: func(c *KVServer) { c.ScanMaxPageBytes = 100 }, wantErr: "scan-max-page-bytes: must be between 1024"},
		{name: "scan page over half a message", mut: func(c *KVServer) { c.MaxMessageBytes, c.ScanMaxPageBytes = 2<<20, 2<<20 }, wantErr: "scan-max-page-bytes: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := kv(tt.mut)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	t.Run("secure ecs creates its directory", func(t *testing.T) {
		c := DefaultECS()
		c.Secure = true
		require.NoError(t, c.Validate())
		require.Equal(t, filepath.Join(c.DataDir, "certs"), c.CertsTLS().CertsDir)
		require.True(t, c.AuthOn())
	})
	t.Run("client names its files", func(t *testing.T) {
		c := DefaultClient()
		c.CertsDir, c.User, c.PasswordFile = dir, "bad name", filepath.Join(dir, "pw")
		err := c.Validate()
		require.ErrorContains(t, err, "user: ")
		require.ErrorContains(t, err, "password-file: ")
		require.Equal(t, filepath.Join(dir, "client.crt"), c.Files("client").Cert)
	})
}
