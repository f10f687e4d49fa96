//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestSecureCluster runs `ecs start --secure` and checks, through the real
// binaries, what a secure cluster promises: every link needs a certificate
// of the cluster's CA, key operations need a login, users cannot reach each
// other's keys, wrong passwords slow down, and a removed user is locked out.
func TestSecureCluster(t *testing.T) {
	c := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(3), framework.WithReplicas(3))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, u := range []string{"alice", "bob"} {
		res := c.AdminInput(t, u+"-pw\n", "user", "add", u)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	res := c.Admin(t, "user", "list")
	require.Equal(t, "alice\nbob\n", res.Stdout)
	require.True(t, c.Status(t).Auth, "ecs status reports authentication")

	pwFile := filepath.Join(t.TempDir(), "alice.pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("alice-pw\n"), 0o600))
	alice := func(args ...string) framework.Result {
		return c.KvclientRun(t, framework.RunOptions{}, append([]string{"--user", "alice", "--password-file", pwFile}, args...)...)
	}
	bob := func(args ...string) framework.Result {
		return c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=bob-pw"}}, append([]string{"--user", "bob"}, args...)...)
	}

	t.Run("connections need a certificate of the cluster CA", func(t *testing.T) {
		probe := func(opt grpc.DialOption) error {
			conn, err := grpc.NewClient(c.ServerAddr("s2"), opt)
			require.NoError(t, err)
			defer conn.Close()
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			defer acancel()
			_, err = kvpb.NewKVClient(conn).Get(actx, &kvpb.GetRequest{Key: []byte("k")})
			return err
		}
		plain, err := tlsutil.DialOption(tlsutil.Files{})
		require.NoError(t, err)
		require.Equal(t, codes.Unavailable, status.Code(probe(plain)), "no certificate")

		other := filepath.Join(t.TempDir(), "other")
		_, err = tlsutil.InitDir(other, tlsutil.DirSpec{Clients: []string{"client"}, Validity: time.Hour})
		require.NoError(t, err)
		f := tlsutil.DirFiles(other, "client")
		f.CA = tlsutil.DirFiles(c.CertsDir(), "client").CA
		foreign, err := tlsutil.DialOption(f)
		require.NoError(t, err)
		require.Equal(t, codes.Unavailable, status.Code(probe(foreign)), "certificate of another CA")

		ours, err := tlsutil.DialOption(tlsutil.DirFiles(c.CertsDir(), "client"))
		require.NoError(t, err)
		require.Equal(t, codes.Unauthenticated, status.Code(probe(ours)), "our certificate but no login")

		res := framework.Run(t, framework.RunOptions{}, c.Bin(framework.KVClientBin), "--server", c.ServerAddr("s1"), "get", "k")
		require.Equal(t, 2, res.ExitCode, "kvclient without certificates")
		res = framework.Run(t, framework.RunOptions{}, c.Bin(framework.ECSBin), "status", "--etcd-endpoints", c.EtcdEndpoint())
		require.NotEqual(t, 0, res.ExitCode, "ecs status without certificates")
		require.Contains(t, res.Stderr, "--certs-dir")
	})

	t.Run("without login every key operation fails", func(t *testing.T) {
		for _, args := range [][]string{{"put", "k", "v"}, {"get", "k"}, {"delete", "k"}} {
			res := c.KvclientRun(t, framework.RunOptions{}, args...)
			require.Equal(t, 2, res.ExitCode, "%v", args)
			require.Contains(t, res.Stderr, "requires a login")
		}
	})

	t.Run("users cannot reach each other's keys", func(t *testing.T) {
		require.Equal(t, "SUCCESS\n", alice("put", "k", "alice's").Stdout)
		res := bob("get", "k")
		require.Equal(t, 1, res.ExitCode)
		require.Equal(t, "NOT_FOUND\n", res.Stderr)
		require.Equal(t, "NOT_FOUND\n", bob("delete", "k").Stdout)
		require.Equal(t, "SUCCESS\n", bob("put", "k", "bob's").Stdout, "bob's put creates his own key")
		require.Equal(t, "alice's\n", alice("get", "k").Stdout)
		require.Equal(t, "bob's\n", bob("get", "k").Stdout)
		require.Equal(t, "SUCCESS\n", bob("delete", "k").Stdout)
		require.Equal(t, "alice's\n", alice("get", "k").Stdout)
	})

	t.Run("REPL login", func(t *testing.T) {
		res := c.KvclientRun(t, framework.RunOptions{Stdin: "get k\nlogin alice\nget k\nlogout\n", Env: []string{"ECSKV_PASSWORD=alice-pw"}})
		require.Equal(t, "ERROR: the cluster requires a login (--user, or login in the REPL)\nlogged in as alice\nalice's\nlogged out\n", res.Stdout)
	})

	t.Run("a wrong password is refused and slows down retries", func(t *testing.T) {
		wrong := func() framework.Result {
			return c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=guess"}}, "--user", "bob", "get", "k")
		}
		res := wrong()
		require.Equal(t, 2, res.ExitCode)
		require.Contains(t, res.Stderr, "wrong user name or password")
		// Each failure doubles the wait before the next try (from 100ms), so
		// within a few tries one lands inside it.
		slowed := false
		for i := 0; i < 8 && !slowed; i++ {
			res = wrong()
			require.Equal(t, 2, res.ExitCode)
			slowed = strings.Contains(res.Stderr, "too many failed logins")
		}
		require.True(t, slowed, "repeated wrong passwords are not slowed down")
	})

	t.Run("ecs add issues a certificate and the server joins over mutual TLS", func(t *testing.T) {
		res := c.Admin(t, "add", "-n", "1", "--timeout", "60s")
		c.Track(t)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.FileExists(t, filepath.Join(c.CertsDir(), "s4.crt"))
		require.Equal(t, "alice's\n", alice("get", "k").Stdout)
	})

	t.Run("library client; a removed user is locked out", func(t *testing.T) {
		cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials("alice", "alice-pw"))
		require.NoError(t, err)
		defer cli.Close()
		v, err := cli.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "alice's", string(v))
		require.Equal(t, 0, c.Admin(t, "user", "remove", "alice").ExitCode)
		testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			_, err := cli.Get(ctx, "k")
			return err != nil && strings.Contains(err.Error(), "wrong user name or password")
		}, "alice's token still works after her removal")
	})

	t.Run("replicas agree", func(t *testing.T) {
		rep := c.Check(t)
		require.Equal(t, 0, rep.ExitCode, "%s\n%s", rep.Stderr, rep.Raw)
	})
}
