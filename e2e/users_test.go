//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// TestRemovedUserKeysGone is the attack of a new account inheriting a
// removed one's data (issue 14, item 4), on real processes: carol and dave
// store keys, carol is removed and added again. The new carol must find
// nothing, every replica must lose the old carol's keys, and dave's keys
// must not change.
func TestRemovedUserKeysGone(t *testing.T) {
	c := framework.NewCluster(t, framework.WithSecure(), framework.WithServers(3), framework.WithReplicas(3))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addUser := func(u string) {
		res := c.AdminInput(t, u+"-pw\n", "user", "add", u)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	as := func(u string, args ...string) framework.Result {
		return c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=" + u + "-pw"}}, append([]string{"--user", u}, args...)...)
	}
	addUser("carol")
	addUser("dave")

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
	addUser("carol")
	res = c.Admin(t, "user", "list", "--long")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Regexp(t, `(?m)^carol +[0-9a-f]{16} +active$`, res.Stdout)

	got := as("carol", "get", "ckey")
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
		got := as("dave", "get", "ckey")
		require.Equal(t, 2, got.ExitCode, "a removed user cannot log in: %s", got.Stderr)
		res = c.Admin(t, "user", "list", "--long")
		require.Regexp(t, `(?m)^dave +[0-9a-f]{16} +removed, keys kept$`, res.Stdout)
		res = c.AdminInput(t, "new-pw\n", "user", "add", "dave")
		require.Equal(t, "added user dave with the keys kept at their removal\n", res.Stdout, res.Stderr)
		got = c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=new-pw"}}, "--user", "dave", "get", "ckey")
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
