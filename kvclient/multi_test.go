package kvclient

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMultiKey: MGet and MPut answer every key in the order given, each
// with its own outcome, more keys than run at once included.
func TestMultiKey(t *testing.T) {
	ctx := context.Background()
	s := startMemServer(t)
	c := newMemClient(t, s)
	var kvs []KV
	for i := range maxMultiInflight + 50 {
		kvs = append(kvs, KV{Key: fmt.Sprintf("m%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	kvs = append(kvs, KV{Key: string(make([]byte, 65))}) // over the key limit
	puts := c.MPut(ctx, kvs)
	require.Len(t, puts, len(kvs))
	for i, p := range puts[:len(puts)-1] {
		require.NoError(t, p.Err, p.Key)
		require.Equal(t, kvs[i].Key, p.Key)
		require.Equal(t, Created, p.Result)
	}
	require.ErrorIs(t, puts[len(puts)-1].Err, ErrKeyTooLarge)

	keys := []string{"m3", "missing", "m0", "m3"}
	gets := c.MGet(ctx, keys)
	require.Len(t, gets, len(keys))
	for i, g := range gets {
		require.Equal(t, keys[i], g.Key)
	}
	require.Equal(t, "v3", string(gets[0].Value))
	require.ErrorIs(t, gets[1].Err, ErrNotFound)
	require.Equal(t, "v0", string(gets[2].Value))
	require.Equal(t, "v3", string(gets[3].Value))
	require.Empty(t, c.MGet(ctx, nil))
}
