//go:build e2e

package e2e

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// startRESPCluster starts three servers with the Redis protocol on
// base..base+2 and waits until each listens; it returns the addresses.
func startRESPCluster(t *testing.T, args ...string) (*framework.Cluster, []string) {
	base := testutil.FreePortRange(t, 3)
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3),
		framework.WithArgs(append([]string{"--resp-base-port", strconv.Itoa(base)}, args...)...))
	var addrs []string
	for i := range 3 {
		addr := framework.Addr(base + i)
		testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				_ = conn.Close()
			}
			return err == nil
		}, "s%d serves the Redis protocol", i+1)
		addrs = append(addrs, addr)
	}
	return c, addrs
}

// TestRESP runs go-redis (plain and cluster mode) and redis-cli against
// the Redis protocol of a three-server cluster, side by side with the Go
// library: each sees what the other wrote.
func TestRESP(t *testing.T) {
	c, addrs := startRESPCluster(t)
	lib := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	clients := []struct {
		name string
		rc   redis.UniversalClient
	}{
		{"go-redis", redis.NewClient(&redis.Options{Addr: addrs[0]})},
		{"go-redis cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addrs[1]}})},
	}
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.rc.Close()
			p := strings.ReplaceAll(tc.name, " ", "-") + ":"
			goRedisAgainstLibrary(ctx, t, tc.rc, lib, p)
		})
	}
	t.Run("redis-cli", func(t *testing.T) {
		redisCLI(t, lib, addrs[2])
		res := c.KvclientRun(t, framework.RunOptions{}, "put", "cli:kvclient", "1")
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		host, port, err := net.SplitHostPort(addrs[0])
		require.NoError(t, err)
		res = framework.Run(t, framework.RunOptions{}, redisCLIPath(t), "-h", host, "-p", port, "GET", "cli:kvclient")
		require.Equal(t, "1\n", res.Stdout, "kvclient put, then redis-cli GET")
	})
}

// goRedisAgainstLibrary runs the key commands through rc, checking each
// against the library's view, under the key prefix p.
func goRedisAgainstLibrary(ctx context.Context, t *testing.T, rc redis.UniversalClient, lib *kvclient.Client, p string) {
	_, err := lib.Put(ctx, p+"lib", []byte("from the library"))
	require.NoError(t, err)
	require.Equal(t, "from the library", rc.Get(ctx, p+"lib").Val())
	require.NoError(t, rc.Set(ctx, p+"r", "from redis", 0).Err())
	v, err := lib.Get(ctx, p+"r")
	require.NoError(t, err)
	require.Equal(t, "from redis", string(v))
	require.ErrorIs(t, rc.Get(ctx, p+"missing").Err(), redis.Nil)

	require.True(t, rc.SetNX(ctx, p+"nx", "first", 0).Val())
	require.False(t, rc.SetNX(ctx, p+"nx", "second", 0).Val())
	require.Equal(t, "first", rc.Get(ctx, p+"nx").Val())

	require.Equal(t, int64(10), rc.IncrBy(ctx, p+"n", 10).Val())
	require.Equal(t, int64(11), rc.Incr(ctx, p+"n").Val())
	v, err = lib.Get(ctx, p+"n")
	require.NoError(t, err)
	require.Equal(t, "11", string(v))
	require.ErrorContains(t, rc.Incr(ctx, p+"r").Err(), "ERR value is not an integer or out of range")

	require.Equal(t, time.Duration(-1), rc.TTL(ctx, p+"r").Val())
	require.True(t, rc.Expire(ctx, p+"r", time.Hour).Val())
	ttl := rc.TTL(ctx, p+"r").Val()
	require.True(t, ttl > 59*time.Minute && ttl <= time.Hour, "TTL %v", ttl)
	require.NoError(t, rc.SetArgs(ctx, p+"r", "kept", redis.SetArgs{KeepTTL: true}).Err())
	ttl = rc.TTL(ctx, p+"r").Val()
	require.True(t, ttl > 59*time.Minute && ttl <= time.Hour, "TTL after SET KEEPTTL %v", ttl)
	require.NoError(t, rc.Set(ctx, p+"r", "from redis", 0).Err())
	require.Equal(t, time.Duration(-1), rc.TTL(ctx, p+"r").Val(), "a plain SET drops the TTL")
	require.True(t, rc.Expire(ctx, p+"r", time.Hour).Val())
	require.False(t, rc.ExpireNX(ctx, p+"r", time.Minute).Val())
	require.False(t, rc.ExpireLT(ctx, p+"r", 2*time.Hour).Val())
	require.True(t, rc.ExpireGT(ctx, p+"r", 2*time.Hour).Val())
	require.Equal(t, 2*time.Hour, rc.TTL(ctx, p+"r").Val())
	require.True(t, rc.Expire(ctx, p+"r", time.Hour).Val())
	require.False(t, rc.Expire(ctx, p+"missing", time.Hour).Val())
	require.Equal(t, time.Duration(-2), rc.TTL(ctx, p+"missing").Val())
	require.NoError(t, rc.Set(ctx, p+"short", "x", 300*time.Millisecond).Err())
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		_, err := lib.Get(ctx, p+"short")
		return errIsNotFound(err)
	}, "a SET PX expires")

	require.NoError(t, rc.MSet(ctx, p+"m1", "one", p+"m2", "two").Err())
	require.Equal(t, []any{"one", nil, "from the library"}, rc.MGet(ctx, p+"m1", p+"missing", p+"lib").Val())
	v, err = lib.Get(ctx, p+"m2")
	require.NoError(t, err)
	require.Equal(t, "two", string(v))

	require.Equal(t, []string{p + "lib", p + "m1", p + "m2", p + "n", p + "nx", p + "r"}, scanAll(ctx, t, rc, p+"*"))

	require.Equal(t, int64(2), rc.Del(ctx, p+"m1", p+"m2", p+"missing").Val())
	_, err = lib.Get(ctx, p+"m1")
	require.True(t, errIsNotFound(err), "%v", err)
	require.ErrorContains(t, rc.Do(ctx, "LPUSH", p+"l", "x").Err(), "ERR unknown command 'LPUSH'")
}

// scanAll pages through the keys matching pattern with SCAN, on every
// master of a cluster client.
func scanAll(ctx context.Context, t *testing.T, rc redis.UniversalClient, pattern string) []string {
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 2).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	if cc, ok := rc.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) }))
	} else {
		require.NoError(t, scan(ctx, rc))
	}
	slices.Sort(keys)
	return keys
}

// redisCLIPath is redis-cli, or a skip: `make peer-tools` installs it.
func redisCLIPath(t *testing.T) string {
	path, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (make peer-tools installs it)")
	}
	return path
}

// redisCLI runs redis-cli non-interactively: one command per run, and a
// script on its standard input.
func redisCLI(t *testing.T, lib *kvclient.Client, addr string, auth ...string) {
	cli := redisCLIPath(t)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	run := func(stdin string, args ...string) string {
		t.Helper()
		res := framework.Run(t, framework.RunOptions{Stdin: stdin}, cli, append(append([]string{"-h", host, "-p", port}, auth...), args...)...)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		return strings.TrimSpace(res.Stdout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Equal(t, "OK", run("", "SET", "cli:a", "b c"))
	require.Equal(t, "b c", run("", "GET", "cli:a"))
	v, err := lib.Get(ctx, "cli:a")
	require.NoError(t, err)
	require.Equal(t, "b c", string(v))
	_, err = lib.Put(ctx, "cli:lib", []byte("1"))
	require.NoError(t, err)
	require.Equal(t, "1", run("", "GET", "cli:lib"))
	require.Equal(t, "-1", run("", "TTL", "cli:a"))
	require.Equal(t, "OK", run("", "SET", "cli:e", "x", "EX", "100"))
	require.Equal(t, "100", run("", "TTL", "cli:e"))
	require.Equal(t, "0\ncli:a\ncli:e\ncli:lib", sortedScan(run("", "SCAN", "0", "MATCH", "cli:*", "COUNT", "1000")))
	require.Equal(t, "2", run("", "DEL", "cli:a", "cli:e", "cli:missing"))
	require.Equal(t, "", run("", "GET", "cli:a"))

	script := "SET cli:s 1\nINCRBY cli:s 41\nGET cli:s\nEXISTS cli:s cli:missing\nPING\n"
	require.Equal(t, "OK\n42\n42\n1\nPONG", run(script))
	v, err = lib.Get(ctx, "cli:s")
	require.NoError(t, err)
	require.Equal(t, "42", string(v))
}

// sortedScan sorts the keys of redis-cli's SCAN output (the cursor, then
// the keys) since a page's order is the cluster's.
func sortedScan(out string) string {
	lines := strings.Split(out, "\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n")
}

// TestRESPAuth: on a cluster with users, a Redis connection must log in
// (AUTH, HELLO AUTH, redis-cli --user), each user sees only their keys,
// the same ones the library sees as that user, and none of the keys of
// connections without a login.
func TestRESPAuth(t *testing.T) {
	c, addrs := startRESPCluster(t, "--auth")
	for _, u := range []string{"alice", "bob"} {
		addUser(t, c, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	libAs := func(u string) *kvclient.Client {
		cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials(u, u+"-pw"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	as := func(addr, u string) *redis.Client {
		rc := redis.NewClient(&redis.Options{Addr: addr, Username: u, Password: u + "-pw"})
		t.Cleanup(func() { _ = rc.Close() })
		return rc
	}
	alice, bob := as(addrs[0], "alice"), redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addrs[1]}, Username: "bob", Password: "bob-pw"})
	defer bob.Close()
	aliceLib := libAs("alice")

	require.NoError(t, alice.Set(ctx, "k", "alice's", 0).Err())
	require.ErrorIs(t, bob.Get(ctx, "k").Err(), redis.Nil, "bob does not see alice's key")
	require.NoError(t, bob.Set(ctx, "k", "bob's", 0).Err())
	require.Equal(t, "alice's", as(addrs[2], "alice").Get(ctx, "k").Val())
	v, err := aliceLib.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "alice's", string(v), "the library as alice sees her key")
	_, err = aliceLib.Put(ctx, "from-lib", []byte("x"))
	require.NoError(t, err)
	require.Equal(t, []string{"from-lib", "k"}, scanAll(ctx, t, alice, "*"), "alice's keys, and only hers")
	require.Equal(t, []string{"k"}, scanAll(ctx, t, bob, "*"))

	anon := redis.NewClient(&redis.Options{Addr: addrs[0]})
	defer anon.Close()
	require.ErrorContains(t, anon.Get(ctx, "k").Err(), "NOAUTH Authentication required.")
	wrong := redis.NewClient(&redis.Options{Addr: addrs[0], Username: "alice", Password: "wrong"})
	defer wrong.Close()
	require.ErrorContains(t, wrong.Get(ctx, "k").Err(), "WRONGPASS")

	t.Run("redis-cli", func(t *testing.T) {
		cli := redisCLIPath(t)
		host, port, err := net.SplitHostPort(addrs[2])
		require.NoError(t, err)
		res := framework.Run(t, framework.RunOptions{}, cli, "-h", host, "-p", port, "GET", "k")
		require.Contains(t, res.Stdout+res.Stderr, "NOAUTH Authentication required.")
		redisCLI(t, aliceLib, addrs[2], "--user", "alice", "--pass", "alice-pw", "--no-auth-warning")
		require.Equal(t, []string{"k"}, scanAll(ctx, t, bob, "*"), "nothing redis-cli wrote as alice is bob's")
	})
}

// TestRESPFailover: a cluster client given every server's address goes on
// through another when the one it used is killed, once it reloads the
// slot map (go-redis: every ClusterStateReloadInterval), since each server
// presents itself as owning every slot.
func TestRESPFailover(t *testing.T) {
	c, addrs := startRESPCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: time.Second})
	defer rc.Close()
	require.NoError(t, rc.Set(ctx, "before", "1", 0).Err())
	var first string
	require.NoError(t, rc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		first = m.Options().Addr
		return nil
	}))
	victim := "s" + strconv.Itoa(slices.Index(addrs, first)+1)
	t.Logf("the client uses %s (%s); killing it", first, victim)
	c.KillServer(t, victim)
	killed := time.Now()
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		return rc.Set(ctx, "after", "2", 0).Err() == nil
	}, "a SET goes through another server")
	t.Logf("a SET went through another server %v after the kill", time.Since(killed).Round(time.Millisecond))
	require.Equal(t, "1", rc.Get(ctx, "before").Val())
	require.Equal(t, "2", rc.Get(ctx, "after").Val())
}
