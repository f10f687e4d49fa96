//go:build e2e

package e2e

import (
	"context"
	"fmt"
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
	c := newSecureCluster(t, "alice", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
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

// TestRemovedUserKeysGone is the attack of a new account inheriting a
// removed one's data (issue 14, item 4), on real processes: carol and dave
// store keys, carol is removed and added again. The new carol must find
// nothing, every replica must lose the old carol's keys, and dave's keys
// must not change.
func TestRemovedUserKeysGone(t *testing.T) {
	c := newSecureCluster(t, "carol", "dave")
	as := func(u string, args ...string) framework.Result {
		return c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=" + u + "-pw"}}, append([]string{"--user", u}, args...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The attack as a person types it, then more keys through the library.
	require.Equal(t, "SUCCESS\n", as("carol", "put", "ckey", "v").Stdout)
	require.Equal(t, "SUCCESS\n", as("dave", "put", "ckey", "dave's").Stdout)
	const n = 30
	dave := map[string]string{"ckey": "dave's"}
	for u, vals := range map[string]map[string]string{"carol": nil, "dave": dave} {
		cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials(u, u+"-pw"))
		require.NoError(t, err)
		for i := range n {
			k, v := fmt.Sprintf("%s-k%d", u, i), fmt.Sprintf("%s-v%d", u, i)
			_, err := cli.Put(ctx, k, []byte(v))
			require.NoError(t, err)
			if vals != nil {
				vals[k] = v
			}
		}
		require.NoError(t, cli.Close())
	}
	members := c.ServerIDs()
	storedKeys := func() map[string]int {
		out := map[string]int{}
		for _, id := range members {
			out[id] = memberKeys(t, ctx, c, id)
		}
		return out
	}
	testutil.Eventually(t, 30*time.Second, 200*time.Millisecond, func() bool {
		for _, k := range storedKeys() {
			if k != 2*(n+1) {
				return false
			}
		}
		return true
	}, "every replica holds carol's and dave's %d keys each: %v", n+1, storedKeys())

	res := c.Admin(t, "user", "remove", "carol")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	addUser(t, c, "carol")
	res = c.Admin(t, "user", "list", "--long")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Regexp(t, `(?m)^carol +[0-9a-f]{16} +active$`, res.Stdout)

	var got framework.Result
	testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, func() bool {
		got = as("carol", "get", "ckey")
		return got.ExitCode != 2 // a refused login: s1 has not seen the new carol yet
	}, "the new carol cannot log in")
	require.Equal(t, 1, got.ExitCode, "%s%s", got.Stdout, got.Stderr)
	require.Equal(t, "NOT_FOUND\n", got.Stderr, "the new carol does not inherit the old one's keys")
	got = as("carol", "get", "carol-k0")
	require.Equal(t, "NOT_FOUND\n", got.Stderr)

	// The heads delete the old carol's keys through the chain: every replica
	// ends with dave's keys alone, and the replicas agree.
	testutil.Eventually(t, 60*time.Second, 500*time.Millisecond, func() bool {
		for _, k := range storedKeys() {
			if k != n+1 {
				return false
			}
		}
		return true
	}, "the removed carol's keys are still stored: %v", storedKeys())
	rep := c.Check(t)
	require.Equal(t, 0, rep.ExitCode, rep.Summary(5))
	require.GreaterOrEqual(t, sumCounter(t, c.Status(t), "ecskv_removed_user_keys_swept_total"), float64(n+1), "the heads count the keys they deleted")

	cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials("dave", "dave-pw"))
	require.NoError(t, err)
	defer cli.Close()
	for k, v := range dave {
		got, err := cli.Get(ctx, k)
		require.NoError(t, err, k)
		require.Equal(t, v, string(got), k)
	}
	require.Equal(t, "dave's\n", as("dave", "get", "ckey").Stdout)

	t.Run("remove --keep-data then add keeps the keys", func(t *testing.T) {
		res := c.Admin(t, "user", "remove", "--keep-data", "dave")
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, func() bool {
			return as("dave", "get", "ckey").ExitCode == 2
		}, "a removed user can still log in")
		res = c.Admin(t, "user", "list", "--long")
		require.Regexp(t, `(?m)^dave +[0-9a-f]{16} +removed, keys kept$`, res.Stdout)
		res = c.AdminInput(t, "new-pw\n", "user", "add", "dave")
		require.Equal(t, "added user dave with the keys kept at their removal\n", res.Stdout, res.Stderr)
		var got framework.Result
		testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, func() bool {
			got = c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=new-pw"}}, "--user", "dave", "get", "ckey")
			return got.ExitCode != 2 // s1 has not seen the new dave yet
		}, "the new dave cannot log in")
		require.Equal(t, "dave's\n", got.Stdout, got.Stderr)
	})
}

// memberKeys sums the keys server id stores in the partitions it is a
// member of (kvpb.Admin/Digest, with the ECS's member certificate).
func memberKeys(t *testing.T, ctx context.Context, c *framework.Cluster, id string) int {
	t.Helper()
	creds, err := tlsutil.DialOption(tlsutil.DirFiles(c.CertsDir(), "ecs"))
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.ServerAddr(id), creds)
	require.NoError(t, err)
	defer conn.Close()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	resp, err := kvpb.NewAdminClient(conn).Digest(dctx, &kvpb.DigestRequest{})
	if err != nil {
		t.Logf("digest of %s: %v", id, err)
		return -1
	}
	keys := 0
	for _, p := range resp.Partitions {
		keys += int(p.Keys)
	}
	return keys
}

// newSecureCluster starts `ecs start --secure` with three servers and
// three replicas, and adds users, each with the password "<name>-pw".
func newSecureCluster(t *testing.T, users ...string) *framework.Cluster {
	t.Helper()
	c := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(3), framework.WithReplicas(3))
	for _, u := range users {
		addUser(t, c, u)
	}
	return c
}

// addUser runs `ecs user add u` with the password "<u>-pw".
func addUser(t *testing.T, c *framework.Cluster, u string) {
	t.Helper()
	res := c.AdminInput(t, u+"-pw\n", "user", "add", u)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
}
