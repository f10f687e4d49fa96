package load

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/config"
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
	d := config.DefaultECS()
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
	d := config.DefaultKVServer()
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
	d := config.DefaultClient()
	fs := pflag.NewFlagSet("kvclient", pflag.ContinueOnError)
	fs.String(ConfigFlag, "", "config file")
	fs.StringSlice("server", d.Servers, "kvserver address")
	fs.StringSlice("etcd-endpoints", d.EtcdEndpoints, "etcd")
	fs.Duration("request-timeout", d.RequestTimeout, "per call")
	fs.String("zone", d.Zone, "zone")
	fs.String("coords", "", "coordinates")
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

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	t.Run("ecs nil flags", func(t *testing.T) {
		got, err := ECS(nil)
		require.NoError(t, err)
		require.Equal(t, config.DefaultECS(), got)
	})
	t.Run("ecs unset flags", func(t *testing.T) {
		got, err := ECS(parse(t, ecsFlags()))
		require.NoError(t, err)
		require.Equal(t, config.DefaultECS(), got)
	})
	t.Run("client", func(t *testing.T) {
		got, err := Client(parse(t, clientFlags()))
		require.NoError(t, err)
		require.Equal(t, config.DefaultClient(), got)
	})
	t.Run("kvserver needs id", func(t *testing.T) {
		_, err := KVServer(parse(t, kvserverFlags()))
		require.ErrorIs(t, err, config.ErrInvalid)
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
		{name: "default", want: config.DefaultPartitions, replicas: config.DefaultReplicas},
		{name: "file", file: true, want: 512, replicas: 3},
		{name: "file via ECSKV_CONFIG", envFile: true, want: 512, replicas: 3},
		{name: "env over default", env: "2048", want: 2048, replicas: config.DefaultReplicas},
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
			got, err := ECS(parse(t, ecsFlags(), args...))
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
	got, err := ECS(parse(t, ecsFlags(), "--config", flagFile))
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
			got, err := ECS(parse(t, ecsFlags(), "--config", writeFile(t, tt.file, tt.content)))
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
			_, err := ECS(parse(t, ecsFlags(), "--config", writeFile(t, tt.file, tt.content)))
			require.ErrorIs(t, err, config.ErrInvalid)
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
		_, err := ECS(parse(t, ecsFlags(), "--config", path))
		require.ErrorIs(t, err, config.ErrInvalid)
		require.Contains(t, err.Error(), "config file "+path)
		require.True(t, errors.Is(err, config.ErrInvalid))
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv("ECSKV_CONFIG", path)
		_, err := KVServer(nil)
		require.ErrorIs(t, err, config.ErrInvalid)
		require.Contains(t, err.Error(), "config file "+path)
	})
}

func TestLoadEnv(t *testing.T) {
	t.Run("ecs endpoint list", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "a:1,b:2")
		got, err := ECS(parse(t, ecsFlags()))
		require.NoError(t, err)
		require.Equal(t, []string{"a:1", "b:2"}, got.EtcdEndpoints)
	})
	t.Run("kvserver endpoint list replaces default", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "a:1,b:2,c:3")
		t.Setenv("ECSKV_ID", "s1")
		t.Setenv("ECSKV_LISTEN", "127.0.0.1:5001")
		t.Setenv("ECSKV_DATA_DIR", t.TempDir())
		got, err := KVServer(nil)
		require.NoError(t, err)
		require.Equal(t, []string{"a:1", "b:2", "c:3"}, got.EtcdEndpoints)
		require.Equal(t, "s1", got.ID)
		// The default must not have been changed through a shared slice.
		require.Equal(t, []string{config.DefaultEtcdEndpoint}, config.DefaultKVServer().EtcdEndpoints)
	})
	t.Run("kvserver single endpoint", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_ETCD_ENDPOINTS", "x:9")
		got, err := KVServer(nil)
		require.ErrorIs(t, err, config.ErrInvalid) // id etc. missing
		require.Equal(t, []string{"x:9"}, got.EtcdEndpoints)
	})
	t.Run("durations", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LEASE_TTL", "5s")
		t.Setenv("ECSKV_READY_TIMEOUT", "2m")
		got, err := ECS(nil)
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
		got, err := ECS(nil)
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
		got, err := Client(parse(t, clientFlags()))
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
		got, err := KVServer(nil)
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
		got, _ := KVServer(nil)
		require.False(t, got.Sync)
	})
	t.Run("bad duration", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LEASE_TTL", "five")
		_, err := ECS(nil)
		require.ErrorIs(t, err, config.ErrInvalid)
		require.Contains(t, err.Error(), "lease-ttl")
	})
	t.Run("invalid value named", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_LOG_LEVEL", "loud")
		_, err := ECS(nil)
		require.ErrorIs(t, err, config.ErrInvalid)
		require.Contains(t, err.Error(), "log-level: ")
	})
	t.Run("empty variable is unset", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ECSKV_PARTITIONS", "")
		got, err := ECS(nil)
		require.NoError(t, err)
		require.Equal(t, config.DefaultPartitions, got.Partitions)
	})
}

func TestLoadFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config.ECS)
	}{
		{name: "shorthand n", args: []string{"-n", "3"}, check: func(t *testing.T, c config.ECS) { require.Equal(t, 3, c.Servers) }},
		{name: "long servers", args: []string{"--servers=0"}, check: func(t *testing.T, c config.ECS) { require.Equal(t, 0, c.Servers) }},
		{name: "endpoint list", args: []string{"--etcd-endpoints", "a:1,b:2"}, check: func(t *testing.T, c config.ECS) {
			require.Equal(t, []string{"a:1", "b:2"}, c.EtcdEndpoints)
		}},
		{name: "repeated endpoint flag", args: []string{"--etcd-endpoints", "a:1", "--etcd-endpoints", "b:2"}, check: func(t *testing.T, c config.ECS) {
			require.Equal(t, []string{"a:1", "b:2"}, c.EtcdEndpoints)
		}},
		{name: "duration", args: []string{"--lease-ttl", "7s"}, check: func(t *testing.T, c config.ECS) { require.Equal(t, 7*time.Second, c.LeaseTTL) }},
		{name: "strings", args: []string{"--data-dir", "/d", "--cluster", "c1", "--http", ":0"}, check: func(t *testing.T, c config.ECS) {
			require.Equal(t, "/d", c.DataDir)
			require.Equal(t, "c1", c.Cluster)
			require.Equal(t, ":0", c.HTTP)
		}},
		{name: "non-config flag ignored", args: []string{"--json"}, check: func(t *testing.T, c config.ECS) { require.Equal(t, config.DefaultECS(), c) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			got, err := ECS(parse(t, ecsFlags(), tt.args...))
			require.NoError(t, err)
			tt.check(t, got)
		})
	}
}

// TestLoadClientPlace reads the client's zone and coordinates, which
// nearest reads use, from flags and the environment alike.
func TestLoadClientPlace(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		zone   string
		coords []float64
	}{
		{name: "flags", args: []string{"--zone", "z1", "--coords", "1.5,-2"}, zone: "z1", coords: []float64{1.5, -2}},
		{name: "env", env: map[string]string{"ECSKV_ZONE": "z2", "ECSKV_COORDS": "3,4"}, zone: "z2", coords: []float64{3, 4}},
		{name: "flag over env", env: map[string]string{"ECSKV_ZONE": "z2"}, args: []string{"--zone", "z1"}, zone: "z1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := Client(parse(t, clientFlags(), tt.args...))
			require.NoError(t, err)
			require.Equal(t, tt.zone, got.Zone)
			require.Equal(t, tt.coords, got.Coords)
		})
	}
	t.Run("not numbers", func(t *testing.T) {
		clearEnv(t)
		_, err := Client(parse(t, clientFlags(), "--coords", "1,x"))
		require.ErrorIs(t, err, config.ErrInvalid)
	})
}

func TestLoadFlagEnvOverEndpointList(t *testing.T) {
	clearEnv(t)
	t.Setenv("ECSKV_ETCD_ENDPOINTS", "env:1,env:2")
	got, err := Client(parse(t, clientFlags(), "--etcd-endpoints", "flag:1"))
	require.NoError(t, err)
	require.Equal(t, []string{"flag:1"}, got.EtcdEndpoints)
}

func TestKVServer(t *testing.T) {
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
			got, err := KVServer(parse(t, kvserverFlags(), args...))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, config.ErrInvalid)
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
	_, err := Client(parse(t, clientFlags(), "--server", "127.0.0.1"))
	require.ErrorIs(t, err, config.ErrInvalid)
	require.Contains(t, err.Error(), "server: ")
	require.Contains(t, err.Error(), `"127.0.0.1"`)
}

func TestLoadTLSFromEnv(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "client.crt", "client.key"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	t.Setenv("ECSKV_CERTS_DIR", dir)
	t.Setenv("ECSKV_PASSWORD", "pw")
	c, err := Client(nil)
	require.NoError(t, err)
	require.Equal(t, dir, c.CertsDir)
	require.Equal(t, "pw", c.Password)
}
