package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestRESP: on a cluster with TLS and users, a user's key set through one
// server's Redis protocol front door reads through another's and through
// the library as that user, and no other user or anonymous connection
// sees it.
func TestRESP(t *testing.T) {
	c := newAuthCluster(t, func(cfg *config.KVServer) {
		cfg.RESPListen, cfg.RESPAllowInsecure = "127.0.0.1:0", true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	as := func(id, user string) *redis.Client {
		rc := redis.NewClient(&redis.Options{Addr: c.srv(id).RESPAddr(), Username: user, Password: user + "-pw"})
		t.Cleanup(func() { _ = rc.Close() })
		return rc
	}
	alice1, alice3, bob2 := as("s1", "alice"), as("s3", "alice"), as("s2", "bob")
	// The servers load the users a moment after they start.
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		return alice1.Set(ctx, "k", "alice's", 0).Err() == nil
	}, "alice sets k through s1")
	require.Equal(t, "alice's", alice3.Get(ctx, "k").Val(), "alice reads it through s3")
	require.ErrorIs(t, bob2.Get(ctx, "k").Err(), redis.Nil, "bob does not see alice's key")
	require.NoError(t, bob2.Set(ctx, "k", "bob's", 0).Err())
	require.Equal(t, "alice's", alice3.Get(ctx, "k").Val())

	tok, err := c.login(t, "s2", "alice", "alice-pw")
	require.NoError(t, err)
	r, err := c.kvAs(t, tok, "k", nil, false)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, r.Status, "%v", r)
	require.Equal(t, "alice's", string(r.Value), "the library sees alice's key in her namespace")

	anon := redis.NewClient(&redis.Options{Addr: c.srv("s1").RESPAddr()})
	defer anon.Close()
	require.ErrorContains(t, anon.Get(ctx, "k").Err(), "NOAUTH Authentication required.")
	wrong := redis.NewClient(&redis.Options{Addr: c.srv("s1").RESPAddr(), Username: "alice", Password: "nope"})
	defer wrong.Close()
	require.ErrorContains(t, wrong.Get(ctx, "k").Err(), "WRONGPASS")
}
