package load

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
)

func FuzzLoadConfigFile(f *testing.F) {
	clearEnv(f)
	for _, s := range []string{
		"",
		"partitions: 512\n",
		"partitions: 1000\n",
		"partitons: 4\n",
		"partitions: lots\n",
		"partitions: 1e3\n",
		"partitions: 0x400\n",
		"partitions: [1, 2]\n",
		"partitions: {a: 1}\n",
		"lease-ttl: 5s\netcd-endpoints: [a:1, b:2]\n",
		"lease-ttl: 5\n",
		"etcd-endpoints: a:1,b:2\n",
		"etcd-endpoints: {a: b}\n",
		"etcd-endpoints: [[a]]\n",
		"cluster: ~\n",
		"cluster: !!binary aGVsbG8=\n",
		"servers: -1\nbase-port: 65535\n",
		"1: 2\n",
		"? [a, b]\n: c\n",
		"a: &x {b: *x}\n",
		"- a\n- b\n",
		"etcd:\n  endpoints: [a:1]\n",
		"data-dir.x: 1\n",
		"PARTITIONS: 8\nPartitions: 16\n",
		"{",
		"\x00\xff",
		"<<: {partitions: 8}\n",
		"secure: true\n",
		"secure: true\ncacert: /nonexistent/ca.crt\n",
		"auth: yes\ntoken-ttl: 0s\n",
		"token-ttl: 1000h\n",
		"certs-dir: /\netcd-key: x\n",
	} {
		f.Add([]byte(s))
	}
	// One file per fuzz worker: inputs run one at a time in a worker.
	path := filepath.Join(f.TempDir(), "ecs.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(path, data, 0o600))
		fs := ecsFlags()
		require.NoError(t, fs.Parse([]string{"--config", path}))

		cfg, err := ECS(fs)
		if err != nil {
			require.ErrorIs(t, err, config.ErrInvalid)
			return
		}
		require.NoError(t, cfg.Validate())
	})
}
