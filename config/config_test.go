package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clearEnv removes every ECSKV_* variable for the duration of the test, so a
// developer's shell cannot change the results.
func clearEnv(tb testing.TB) {
	tb.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ECSKV_") {
			tb.Setenv(k, "")
			require.NoError(tb, os.Unsetenv(k))
		}
	}
}

// The flag sets below are built the way the binaries build them (DESIGN §10):
// flag names are the mapstructure keys and defaults come from Default*().

func ecsFlags() *pflag.FlagSet {
	d := DefaultECS()
	fs := pflag.NewFlagSet("ecs start", pflag.ContinueOnError)
	fs.String(ConfigFlag, "", "config file")
	fs.String("cluster", d.Cluster, "cluster name")
	fs.String("data-dir", d.DataDir, "data directory")
	fs.IntP("servers", "n", d.Servers, "local kvservers to launch")
	fs.String("host", d.Host, "bind address")
	fs.Int("base-port", d.BasePort, "first server port")
	fs.StringSlice("etcd-endpoints", d.EtcdEndpoints, "external etcd")
	fs.Int("etcd-port", d.EtcdPort, "embedded etcd port")
	fs.Int("replicas", d.Replicas, "R")
	fs.Int("partitions", d.Partitions, "P")
	fs.String("http", d.HTTP, "status address")
	fs.Duration("lease-ttl", d.LeaseTTL, "membership lease")
	fs.String("log-level", d.LogLevel, "log level")
	fs.Bool("json", false, "not a config key")
	return fs
}

func kvserverFlags() *pflag.FlagSet {
	d := DefaultKVServer()
	fs := pflag.NewFlagSet("kvserver", pflag.ContinueOnError)
	fs.String(ConfigFlag, "", "config file")
	fs.String("id", d.ID, "server id")
	fs.String("listen", d.Listen, "listen address")
	fs.String("data-dir", d.DataDir, "data directory")
	fs.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd")
	fs.String("zone", d.Zone, "zone")
	fs.Bool("sync", d.Sync, "fsync")
	fs.Int64("cache-bytes", d.CacheBytes, "cache budget")
	return fs
}

func clientFlags() *pflag.FlagSet {
	d := DefaultClient()
	fs := pflag.NewFlagSet("kvclient", pflag.ContinueOnError)
	fs.String(ConfigFlag, "", "config file")
	fs.StringSlice("server", d.Servers, "kvserver address")
	fs.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd")
	fs.Duration("request-timeout", d.RequestTimeout, "per call")
	return fs
}

func parse(t *testing.T, fs *pflag.FlagSet, args ...string) *pflag.FlagSet {
	t.Helper()
	require.NoError(t, fs.Parse(args))
	return fs
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

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

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	t.Run("ecs nil flags", func(t *testing.T) {
		got, err := LoadECS(nil)
		require.NoError(t, err)
		require.Equal(t, DefaultECS(), got)
	})
	t.Run("ecs unset flags", func(t *testing.T) {
		got, err := LoadECS(parse(t, ecsFlags()))
		require.NoError(t, err)
		require.Equal(t, DefaultECS(), got)
	})
	t.Run("client", func(t *testing.T) {
		got, err := LoadClient(parse(t, clientFlags()))
		require.NoError(t, err)
		require.Equal(t, DefaultClient(), got)
	})
	t.Run("kvserver needs id", func(t *testing.T) {
		_, err := LoadKVServer(parse(t, kvserverFlags()))
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "id: ")
	})
}

func TestLoadPrecedence(t *testing.T) {
	const file = "partitions: 512\nreplicas: 3\n"
	tests := []struct {
		name     string
		file     bool     // write file and pass it with --config
		envFile  bool     // pass the file through ECSKV_CONFIG instead
		env      string   // ECSKV_PARTITIONS
		args     []string // extra flags
		want     int
		replicas int
	}{
		{name: "default", want: DefaultPartitions, replicas: DefaultReplicas},
		{name: "file", file: true, want: 512, replicas: 3},
		{name: "file via ECSKV_CONFIG", envFile: true, want: 512, replicas: 3},
		{name: "env over default", env: "2048", want: 2048, replicas: DefaultReplicas},
		{name: "env over file", file: true, env: "2048", want: 2048, replicas: 3},
		{name: "flag over env and file", file: true, env: "2048", args: []string{"--partitions", "4096"}, want: 4096, replicas: 3},
		{name: "flag over file", file: true, args: []string{"--partitions=8"}, want: 8, replicas: 3},
		{name: "flag equal to default still wins", file: true, env: "2048", args: []string{"--partitions", "1024"}, want: 1024, replicas: 3},
		{name: "other flag set leaves env and file", file: true, env: "2048", args: []string{"-n", "2"}, want: 2048, replicas: 3},
		{name: "unset flag leaves file", file: true, args: []string{"--replicas", "2"}, want: 512, replicas: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			args := tt.args
			if tt.file || tt.envFile {
				path := writeFile(t, "ecs.yaml", file)
				if tt.envFile {
					t.Setenv("ECSKV_CONFIG", path)
				} else {
					args = append([]string{"--config", path}, args...)
				}
			}
			if tt.env != "" {
				t.Setenv("ECSKV_PARTITIONS", tt.env)
			}
			got, err := LoadECS(parse(t, ecsFlags(), args...))
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Partitions)
			require.Equal(t, tt.replicas, got.Replicas)
		})
	}
}

func TestLoadConfigFlagOverridesConfigEnv(t *testing.T) {
	clearEnv(t)
	t.Setenv("ECSKV_CONFIG", writeFile(t, "env.yaml", "partitions: 64\n"))
	flagFile := writeFile(t, "flag.yaml", "partitions: 128\n")
	got, err := LoadECS(parse(t, ecsFlags(), "--config", flagFile))
	require.NoError(t, err)
	require.Equal(t, 128, got.Partitions)
}

func TestLoadFileFormats(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{name: "yaml", file: "c.yaml", content: "partitions: 256\nlease-ttl: 5s\netcd-endpoints: [a:1, b:2]\n"},
		{name: "yml", file: "c.yml", content: "partitions: 256\nlease-ttl: 5s\netcd-endpoints:\n  - a:1\n  - b:2\n"},
		{name: "json", file: "c.json", content: `{"partitions": 256, "lease-ttl": "5s", "etcd-endpoints": ["a:1", "b:2"]}`},
		{name: "toml", file: "c.toml", content: "partitions = 256\nlease-ttl = \"5s\"\netcd-endpoints = [\"a:1\", \"b:2\"]\n"},
		{name: "upper-case keys", file: "c.yaml", content: "PARTITIONS: 256\nLease-TTL: 5s\netcd-endpoints: a:1,b:2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			got, err := LoadECS(parse(t, ecsFlags(), "--config", writeFile(t, tt.file, tt.content)))
			require.NoError(t, err)
			require.Equal(t, 256, got.Partitions)
			require.Equal(t, 5*time.Second, got.LeaseTTL)
			require.Equal(t, []string{"a:1", "b:2"}, got.EtcdEndpoints)
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, file, content string
		msg                 []string
	}{
		{name: "unknown key", file: "c.yaml", content: "partitions: 512\npartitons: 4\n", msg: []string{"partitons"}},
		{name: "key of another binary", file: "c.yaml", content: "request-timeout: 1s\n", msg: []string{"request-timeout"}},
		{name: "nested unknown section", file: "c.yaml", content: "etcd:\n  port: 1\n", msg: []string{"etcd"}},
		{name: "wrong type", file: "c.yaml", content: "partitions: lots\n", msg: []string{"partitions"}},
		{name: "bad duration", file: "c.yaml", content: "lease-ttl: soon\n", msg: []string{"lease-ttl"}},
		{name: "syntax error", file: "c.yaml", content: "partitions: [\n", msg: []string{"c.yaml"}},
		{name: "unsupported extension", file: "c.conf", content: "partitions: 4\n", msg: []string{"c.conf"}},
		{name: "valid file invalid value", file: "c.yaml", content: "partitions: 1000\n", msg: []string{"partitions: ", "1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			_, err := LoadECS(parse(t, ecsFlags(), "--config", writeFile(t, tt.file, tt.content)))
			require.ErrorIs(t, err, ErrInvalid)
			for _, m := range tt.msg {
				require.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "missing.yaml")
	t.Run("flag", func(t *testing.T) {
		_, err := LoadECS(parse(t, ecsFlags(), "--config", path))
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "config file "+path)
		require.True(t, errors.Is(err, ErrInvalid))
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv("ECSKV_CONFIG", path)
		_, err := LoadKVServer(nil)
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "config file "+path)
	})
}

func TestLoadEnv(t *testing.T) {
	t.Run("ecs endpoint list", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "a:1,b:2")
		got, err := LoadECS(parse(t, ecsFlags()))
		require.NoError(t, err)
		require.Equal(t, []string{"a:1", "b:2"}, got.EtcdEndpoints)
	})
	t.Run("kvserver endpoint list replaces default", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "a:1,b:2,c:3")
		t.Setenv("ECSKV_ID", "s1")
		t.Setenv("ECSKV_LISTEN", "127.0.0.1:5001")
		t.Setenv("ECSKV_DATA_DIR", t.TempDir())
		got, err := LoadKVServer(nil)
		require.NoError(t, err)
		require.Equal(t, []string{"a:1", "b:2", "c:3"}, got.EtcdEndpoints)
		require.Equal(t, "s1", got.ID)
		// The default must not have been changed through a shared slice.
		require.Equal(t, []string{DefaultEtcdEndpoint}, DefaultKVServer().EtcdEndpoints)
	})
	t.Run("kvserver single endpoint", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "x:9")
		got, err := LoadKVServer(nil)
		require.ErrorIs(t, err, ErrInvalid) // id etc. missing
		require.Equal(t, []string{"x:9"}, got.EtcdEndpoints)
	})
	t.Run("durations", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LEASE_TTL", "5s")
		t.Setenv("ECSKV_READY_TIMEOUT", "2m")
		got, err := LoadECS(nil)
		require.NoError(t, err)
		require.Equal(t, 5*time.Second, got.LeaseTTL)
		require.Equal(t, 2*time.Minute, got.ReadyTimeout)
	})
	t.Run("detector and mover", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_PROBE_INTERVAL", "50ms")
		t.Setenv("ECSKV_PROBE_TIMEOUT", "40ms")
		t.Setenv("ECSKV_PROBE_FAILURES", "5")
		t.Setenv("ECSKV_MAX_MOVES", "2")
		got, err := LoadECS(nil)
		require.NoError(t, err)
		require.Equal(t, 50*time.Millisecond, got.ProbeInterval)
		require.Equal(t, 40*time.Millisecond, got.ProbeTimeout)
		require.Equal(t, 5, got.ProbeFailures)
		require.Equal(t, 2, got.MaxMoves)
	})
	t.Run("client duration and servers", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_REQUEST_TIMEOUT", "250ms")
		t.Setenv("ECSKV_SERVER", "127.0.0.1:5001,127.0.0.1:5002")
		got, err := LoadClient(parse(t, clientFlags()))
		require.NoError(t, err)
		require.Equal(t, 250*time.Millisecond, got.RequestTimeout)
		require.Equal(t, []string{"127.0.0.1:5001", "127.0.0.1:5002"}, got.Servers)
	})
	t.Run("kvserver bounds", func(t *testing.T) {
		clearEnv(t)
		for k, v := range map[string]string{
			"ID": "s1", "LISTEN": "127.0.0.1:5001", "DATA_DIR": "/d", "MAX_CONNECTIONS": "50",
			"MAX_PENDING_CONNECTIONS": "8", "HANDSHAKE_TIMEOUT": "1s", "FIRST_REQUEST_TIMEOUT": "2s", "IDLE_TIMEOUT": "0",
			"MAX_BATCH_INFLIGHT": "16", "MAX_BATCH_QUEUED_BYTES": "1048576", "BATCH_STALL_TIMEOUT": "3s",
		} {
			t.Setenv("ECSKV_"+k, v)
		}
		got, err := LoadKVServer(nil)
		require.NoError(t, err)
		require.Equal(t, 50, got.MaxConnections)
		require.Equal(t, 8, got.MaxPendingConnections)
		require.Equal(t, time.Second, got.HandshakeTimeout)
		require.Equal(t, 2*time.Second, got.FirstRequestTimeout)
		require.Zero(t, got.IdleTimeout)
		require.Equal(t, 16, got.MaxBatchInflight)
		require.Equal(t, 1<<20, got.MaxBatchQueuedBytes)
		require.Equal(t, 3*time.Second, got.BatchStallTimeout)
	})
	t.Run("bool", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_SYNC", "false")
		got, _ := LoadKVServer(nil)
		require.False(t, got.Sync)
	})
	t.Run("bad duration", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LEASE_TTL", "five")
		_, err := LoadECS(nil)
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "lease-ttl")
	})
	t.Run("invalid value named", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LOG_LEVEL", "loud")
		_, err := LoadECS(nil)
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "log-level: ")
	})
	t.Run("empty variable is unset", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_PARTITIONS", "")
		got, err := LoadECS(nil)
		require.NoError(t, err)
		require.Equal(t, DefaultPartitions, got.Partitions)
	})
}

func TestLoadFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c ECS)
	}{
		{name: "shorthand n", args: []string{"-n", "3"}, check: func(t *testing.T, c ECS) { require.Equal(t, 3, c.Servers) }},
		{name: "long servers", args: []string{"--servers=0"}, check: func(t *testing.T, c ECS) { require.Equal(t, 0, c.Servers) }},
		{name: "endpoint list", args: []string{"--etcd-endpoints", "a:1,b:2"}, check: func(t *testing.T, c ECS) {
			require.Equal(t, []string{"a:1", "b:2"}, c.EtcdEndpoints)
		}},
		{name: "repeated endpoint flag", args: []string{"--etcd-endpoints", "a:1", "--etcd-endpoints", "b:2"}, check: func(t *testing.T, c ECS) {
			require.Equal(t, []string{"a:1", "b:2"}, c.EtcdEndpoints)
		}},
		{name: "duration", args: []string{"--lease-ttl", "7s"}, check: func(t *testing.T, c ECS) { require.Equal(t, 7*time.Second, c.LeaseTTL) }},
		{name: "strings", args: []string{"--data-dir", "/d", "--cluster", "c1", "--http", ":0"}, check: func(t *testing.T, c ECS) {
			require.Equal(t, "/d", c.DataDir)
			require.Equal(t, "c1", c.Cluster)
			require.Equal(t, ":0", c.HTTP)
		}},
		{name: "non-config flag ignored", args: []string{"--json"}, check: func(t *testing.T, c ECS) { require.Equal(t, DefaultECS(), c) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			got, err := LoadECS(parse(t, ecsFlags(), tt.args...))
			require.NoError(t, err)
			tt.check(t, got)
		})
	}
}

func TestLoadFlagEnvOverEndpointList(t *testing.T) {
	clearEnv(t)
	t.Setenv("ECSKV_ETCD_ENDPOINTS", "env:1,env:2")
	got, err := LoadClient(parse(t, clientFlags(), "--etcd-endpoints", "flag:1"))
	require.NoError(t, err)
	require.Equal(t, []string{"flag:1"}, got.EtcdEndpoints)
}

func TestLoadKVServer(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string
	}{
		{name: "all flags", args: []string{"--id", "s1", "--listen", "127.0.0.1:5001", "--data-dir", "/d", "--etcd-endpoints", "e:1"}},
		{name: "file and flag", file: "id: s1\nlisten: 127.0.0.1:5001\nzone: z1\n", args: []string{"--data-dir", "/d"}},
		{name: "missing id", args: []string{"--listen", "127.0.0.1:5001", "--data-dir", "/d"}, wantErr: "id: "},
		{name: "bad listen", args: []string{"--id", "s1", "--listen", "nope", "--data-dir", "/d"}, wantErr: "listen: "},
		{name: "ecs key in kvserver file", file: "id: s1\npartitions: 4\n", wantErr: "partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, "kv.yaml", tt.file)}, args...)
			}
			got, err := LoadKVServer(parse(t, kvserverFlags(), args...))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalid)
				require.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "s1", got.ID)
			require.Equal(t, "/d", got.DataDir)
		})
	}
}

func TestLoadClientBadServer(t *testing.T) {
	clearEnv(t)
	_, err := LoadClient(parse(t, clientFlags(), "--server", "127.0.0.1"))
	require.ErrorIs(t, err, ErrInvalid)
	require.Contains(t, err.Error(), "server: ")
	require.Contains(t, err.Error(), `"127.0.0.1"`)
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
		{name: "idle timeout too short", mut: func(c *KVServer) { c.IdleTimeout = time.Millisecond }, wantErr: "idle-timeout: must be 0 (never) or at least 1s"},
		{name: "no batch in flight", mut: func(c *KVServer) { c.MaxBatchInflight = 0 }, wantErr: "max-batch-inflight: must be at least 1"},
		{name: "dht api", mut: func(c *KVServer) { c.DHTListen = "127.0.0.1:7001" }},
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
	t.Run("env", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_CERTS_DIR", dir)
		t.Setenv("ECSKV_PASSWORD", "pw")
		c, err := LoadClient(nil)
		require.NoError(t, err)
		require.Equal(t, dir, c.CertsDir)
		require.Equal(t, "pw", c.Password)
	})
}
