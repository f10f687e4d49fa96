package resp

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestGoRedis: go-redis, plain and in cluster mode, RESP3 and RESP2, gets
// through its connection set-up (HELLO, CLIENT SETINFO, CLUSTER SLOTS,
// COMMAND) and runs the key commands.
func TestGoRedis(t *testing.T) {
	mc := newMemCluster()
	s := startServer(t, mc, nil)
	addr := s.Addr().String()
	clients := map[string]redis.UniversalClient{
		"plain resp3":   redis.NewClient(&redis.Options{Addr: addr, Protocol: 3}),
		"plain resp2":   redis.NewClient(&redis.Options{Addr: addr, Protocol: 2}),
		"cluster resp3": redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, Protocol: 3}),
		"cluster ro":    redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, ReadOnly: true}),
	}
	for name, rc := range clients {
		t.Run(name, func(t *testing.T) {
			defer rc.Close()
			exerciseGoRedis(t, rc, name+":")
		})
	}
}

func exerciseGoRedis(t *testing.T, rc redis.UniversalClient, p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rc.Ping(ctx).Err())
	require.NoError(t, rc.Set(ctx, p+"a", "1", 0).Err())
	require.Equal(t, "1", rc.Get(ctx, p+"a").Val())
	require.ErrorIs(t, rc.Get(ctx, p+"missing").Err(), redis.Nil)
	require.True(t, rc.SetNX(ctx, p+"nx", "x", 0).Val())
	require.False(t, rc.SetNX(ctx, p+"nx", "y", 0).Val())
	require.Equal(t, int64(5), rc.IncrBy(ctx, p+"n", 5).Val())
	require.Equal(t, int64(4), rc.Decr(ctx, p+"n").Val())
	require.True(t, rc.Expire(ctx, p+"a", time.Minute).Val())
	require.Equal(t, time.Minute, rc.TTL(ctx, p+"a").Val())
	require.Equal(t, time.Duration(-2), rc.TTL(ctx, p+"missing").Val())
	require.NoError(t, rc.MSet(ctx, p+"m1", "v1", p+"m2", "v2").Err())
	require.Equal(t, []any{"v1", nil, "v2"}, rc.MGet(ctx, p+"m1", p+"missing", p+"m2").Val())
	require.Equal(t, int64(2), rc.Del(ctx, p+"m1", p+"m2", p+"missing").Val())
	require.Equal(t, "x", rc.SetArgs(ctx, p+"nx", "z", redis.SetArgs{Get: true}).Val())
	var keys []string
	var iter *redis.ScanIterator
	if cc, ok := rc.(*redis.ClusterClient); ok {
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			it := c.Scan(ctx, 0, p+"*", 2).Iterator()
			for it.Next(ctx) {
				keys = append(keys, it.Val())
			}
			return it.Err()
		}))
	} else {
		iter = rc.Scan(ctx, 0, p+"*", 2).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		require.NoError(t, iter.Err())
	}
	slices.Sort(keys)
	require.Equal(t, []string{p + "a", p + "n", p + "nx"}, keys)
	require.ErrorContains(t, rc.Do(ctx, "HGET", "h", "f").Err(), "ERR unknown command 'HGET'")
}

// TestGoRedisAuth: go-redis logs in with HELLO 3 AUTH, and each user sees
// only their keys.
func TestGoRedisAuth(t *testing.T) {
	mc := newMemCluster()
	mc.passwords["alice"], mc.passwords["bob"] = "alice-pw", "bob-pw"
	s := startServer(t, mc, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := s.Addr().String()
	alice := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "alice-pw"})
	defer alice.Close()
	bob := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, Username: "bob", Password: "bob-pw", Protocol: 2})
	defer bob.Close()
	nobody := redis.NewClient(&redis.Options{Addr: addr})
	defer nobody.Close()
	wrong := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "nope"})
	defer wrong.Close()

	require.NoError(t, alice.Set(ctx, "k", "alice's", 0).Err())
	require.ErrorIs(t, bob.Get(ctx, "k").Err(), redis.Nil)
	require.NoError(t, bob.Set(ctx, "k", "bob's", 0).Err())
	require.Equal(t, "alice's", alice.Get(ctx, "k").Val())
	require.ErrorContains(t, nobody.Get(ctx, "k").Err(), "NOAUTH Authentication required.")
	require.ErrorContains(t, wrong.Get(ctx, "k").Err(), "WRONGPASS")
}
