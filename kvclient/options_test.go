package kvclient

import (
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

func TestReadOptions(t *testing.T) {
	var m Meta
	got := ReadOptions(WithTTL(time.Minute), IfVersion(7), ReturnPrevious(), WithMeta(&m), WithKeysOnly())
	require.Equal(t, time.Minute, got.TTL)
	require.Equal(t, kvpb.Condition_VERSION, got.Cond.Kind)
	require.Equal(t, uint64(7), got.Cond.Version)
	require.True(t, got.ReturnPrevious)
	require.Same(t, &m, got.Meta)
	require.True(t, got.KeysOnly)

	got = ReadOptions(IfValue([]byte("old")))
	require.Equal(t, kvpb.Condition_VALUE, got.Cond.Kind)
	require.Equal(t, "old", string(got.Cond.Value))
	require.Equal(t, CallOptions{}, ReadOptions(), "no options, nothing asked")
}
