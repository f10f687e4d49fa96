//go:build e2e

package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestAdminFailsFast: an admin command that cannot reach its cluster
// fails within a few seconds with one line naming the endpoint and the
// likely cause, whatever the command's own --timeout.
func TestAdminFailsFast(t *testing.T) {
	c := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(1), framework.WithReplicas(1))
	ecsBin := c.Bin(framework.ECSBin)
	idle := framework.Addr(testutil.FreePort(t))
	clientCert := tlsutil.DirFiles(c.CertsDir(), "client")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing listening", []string{"add", "--etcd-endpoints", idle}, "nothing listening at " + idle},
		{"TLS needed", []string{"check", "--etcd-endpoints", c.EtcdEndpoint()}, "does not answer in plaintext; a secure cluster needs --certs-dir"},
		{"wrong cluster name", append([]string{"status", "--etcd-endpoints", c.EtcdEndpoint(), "--cluster", "nosuch"}, c.AdminTLS()...),
			`no cluster "nosuch" in etcd at ` + c.EtcdEndpoint()},
		{"a client's certificate", []string{"remove", "s1", "--etcd-endpoints", c.EtcdEndpoint(),
			"--cacert", clientCert.CA, "--cert", clientCert.Cert, "--key", clientCert.Key},
			"certificate " + filepath.Join(c.CertsDir(), "client.crt") + " is a client's"},
		{"a foreign CA", []string{"stop", "--etcd-endpoints", c.EtcdEndpoint(), "--certs-dir", foreignCerts(t)}, "TLS with etcd at " + c.EtcdEndpoint() + " failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := framework.Run(t, framework.RunOptions{}, ecsBin, tt.args...)
			took := time.Since(start)
			require.NotEqual(t, 0, res.ExitCode)
			require.Contains(t, res.Stderr, tt.want)
			require.Less(t, took, 8*time.Second, "took %v", took)
			require.Equal(t, 1, countLines(res.Stderr), "one line: %q", res.Stderr)
		})
	}
}

// TestClientFailsFast: kvclient that cannot reach the cluster says why in
// one line, within a few seconds.
func TestClientFailsFast(t *testing.T) {
	c := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(1), framework.WithReplicas(1))
	idle := framework.Addr(testutil.FreePort(t))
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing listening (etcd)", []string{"--etcd-endpoints", idle, "get", "k"}, "nothing listening at " + idle},
		{"nothing listening (server)", []string{"--server", idle, "get", "k"}, "nothing listening at " + idle},
		{"TLS needed", []string{"--server", c.ServerAddr("s1"), "get", "k"}, "a secure cluster needs --certs-dir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := framework.Run(t, framework.RunOptions{}, c.Bin(framework.KVClientBin), tt.args...)
			took := time.Since(start)
			require.Equal(t, 2, res.ExitCode)
			require.Contains(t, res.Stderr, tt.want)
			require.Less(t, took, 8*time.Second, "took %v", took)
			require.Equal(t, 1, countLines(res.Stderr), "one line: %q", res.Stderr)
		})
	}
}

// foreignCerts is a certificate directory of another CA.
func foreignCerts(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "foreign")
	_, err := tlsutil.InitDir(dir, tlsutil.DirSpec{Validity: time.Hour})
	require.NoError(t, err)
	return dir
}

func countLines(s string) int {
	n := 0
	for _, c := range s {
		if c == '\n' {
			n++
		}
	}
	return n
}
