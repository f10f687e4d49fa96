package ecs

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
)

func TestEnsureAuthConfig(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
}
