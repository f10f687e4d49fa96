package ecs

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func TestUsers(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{"bob", "alice"} {
		u, err := auth.NewUser(n, "pw", bcrypt.MinCost)
		require.NoError(t, err)
		require.NoError(t, AddUser(ctx, cli, "c", u))
	}
	u, _ := auth.NewUser("bob", "other", bcrypt.MinCost)
	require.ErrorIs(t, AddUser(ctx, cli, "c", u), ErrUserExists)
	names, err := ListUsers(ctx, cli, "c")
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "bob"}, names)
	require.NoError(t, RemoveUser(ctx, cli, "c", "bob"))
	require.ErrorIs(t, RemoveUser(ctx, cli, "c", "bob"), ErrNoUser)
	require.ErrorIs(t, RemoveUser(ctx, cli, "c", "../x"), auth.ErrBadUser)
	names, err = ListUsers(ctx, cli, "c")
	require.NoError(t, err)
	require.Equal(t, []string{"alice"}, names)

	t.Run("auth config keeps its key", func(t *testing.T) {
		read := func() auth.Config {
			resp, err := cli.Get(ctx, etcdkeys.Auth("c"))
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1)
			c, err := auth.UnmarshalConfig(resp.Kvs[0].Value)
			require.NoError(t, err)
			return c
		}
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Minute))
		first := read()
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Minute))
		require.Equal(t, first, read())
		require.NoError(t, EnsureAuthConfig(ctx, cli, "c", time.Hour))
		second := read()
		require.Equal(t, first.Key, second.Key, "a new lifetime keeps the key (and the tokens)")
		require.Equal(t, time.Hour.Milliseconds(), second.TokenTTLMs)
	})
}
