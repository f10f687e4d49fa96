package kvserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// TestLibraryConditionalWrites drives conditions, versions, increments and
// expiry changes through the client library against a chain of three
// servers, on the Batch stream and on unary calls: each outcome is the
// library's error (errors.Is) or result, WithMeta reports the versions
// and TTLs the servers answer, and a refused write changes nothing.
func TestLibraryConditionalWrites(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	for name, opts := range map[string][]kvclient.Option{"batch": nil, "unary": {kvclient.WithUnaryCalls()}} {
		t.Run(name, func(t *testing.T) {
			cl, err := c.newLibClient(t, false, nil, opts...)
			require.NoError(t, err)
			libConditions(t, cl, name+"-")
			libCounters(t, cl, name+"-")
			libExpiry(t, cl, name+"-")
		})
	}
}

func libConditions(t *testing.T, cl *kvclient.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := prefix + "cond"
	get := func() (string, kvclient.Meta) {
		t.Helper()
		var m kvclient.Meta
		v, err := cl.Get(ctx, k, kvclient.WithMeta(&m))
		require.NoError(t, err)
		return string(v), m
	}

	var m kvclient.Meta
	res, err := cl.Put(ctx, k, []byte("a"), kvclient.IfAbsent(), kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, kvclient.Created, res)
	v1 := m.Version
	require.NotZero(t, v1, "a write reports its version")
	_, err = cl.Put(ctx, k, []byte("b"), kvclient.IfAbsent(), kvclient.WithMeta(&m))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Equal(t, v1, m.Version, "a failed condition reports the current version")
	val, got := get()
	require.Equal(t, "a", val)
	require.Equal(t, v1, got.Version, "a read reports the version of its value")
	require.Zero(t, got.TTL)

	// Compare-and-swap on the version read.
	res, err = cl.Put(ctx, k, []byte("c"), kvclient.IfVersion(v1), kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, kvclient.Updated, res)
	v2 := m.Version
	require.Greater(t, v2, v1, "versions grow while the key exists")
	_, err = cl.Put(ctx, k, []byte("stale"), kvclient.IfVersion(v1), kvclient.WithMeta(&m))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Equal(t, v2, m.Version)

	// Compare-and-swap on the value, with the value replaced.
	_, err = cl.Put(ctx, k, []byte("d"), kvclient.IfValue([]byte("c")), kvclient.ReturnPrevious(), kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, "c", string(m.Previous))
	require.True(t, m.Existed)
	_, err = cl.Put(ctx, k, []byte("e"), kvclient.IfValue([]byte("c")))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	_, err = cl.Put(ctx, k, []byte("f"), kvclient.IfExists())
	require.NoError(t, err)
	val, got = get()
	require.Equal(t, "f", val)

	// Conditional deletes.
	err = cl.Delete(ctx, k, kvclient.IfVersion(v2), kvclient.WithMeta(&m))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Equal(t, got.Version, m.Version)
	require.ErrorIs(t, cl.Delete(ctx, k, kvclient.IfValue([]byte("x"))), kvclient.ErrConditionFailed)
	require.NoError(t, cl.Delete(ctx, k, kvclient.IfVersion(got.Version)))
	_, err = cl.Get(ctx, k)
	require.ErrorIs(t, err, kvclient.ErrNotFound)

	// Absent: version 0; IfExists and IfValue fail, IfVersion(0) holds.
	_, err = cl.Put(ctx, k, []byte("g"), kvclient.IfExists(), kvclient.WithMeta(&m))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Zero(t, m.Version, "an absent key has version 0")
	_, err = cl.Put(ctx, k, []byte("g"), kvclient.IfValue([]byte("f")))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	res, err = cl.Put(ctx, k, []byte("g"), kvclient.IfVersion(0))
	require.NoError(t, err)
	require.Equal(t, kvclient.Created, res)
}

func libCounters(t *testing.T, cl *kvclient.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, x := prefix+"n", prefix+"x"
	got, err := cl.Incr(ctx, n, 5)
	require.NoError(t, err)
	require.Equal(t, int64(5), got, "an absent key counts as 0")
	var m kvclient.Meta
	got, err = cl.Incr(ctx, n, -7, kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, int64(-2), got)
	require.NotZero(t, m.Version)
	v, err := cl.Get(ctx, n)
	require.NoError(t, err)
	require.Equal(t, "-2", string(v), "stored in base 10")

	for _, bad := range []string{"abc", "007", "+1", "1.0", ""} {
		_, err := cl.Put(ctx, x, []byte(bad))
		require.NoError(t, err)
		_, err = cl.Incr(ctx, x, 1)
		require.ErrorIs(t, err, kvclient.ErrNotInteger, "%q", bad)
		v, err := cl.Get(ctx, x)
		require.NoError(t, err)
		require.Equal(t, bad, string(v), "a refused increment wrote nothing")
	}
	_, err = cl.Put(ctx, x, []byte(strconv.FormatInt(-9223372036854775807, 10)))
	require.NoError(t, err)
	_, err = cl.Incr(ctx, x, -2)
	require.ErrorIs(t, err, kvclient.ErrOverflow)
	got, err = cl.Incr(ctx, x, -1)
	require.NoError(t, err)
	require.Equal(t, int64(-9223372036854775808), got)
	_, err = cl.Incr(ctx, x, -1)
	require.ErrorIs(t, err, kvclient.ErrOverflow)
	v, err = cl.Get(ctx, x)
	require.NoError(t, err)
	require.Equal(t, "-9223372036854775808", string(v))
}

func libExpiry(t *testing.T, cl *kvclient.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, missing := prefix+"ttl", prefix+"missing"
	meta := func() kvclient.Meta {
		t.Helper()
		var m kvclient.Meta
		_, err := cl.Get(ctx, k, kvclient.WithMeta(&m))
		require.NoError(t, err)
		return m
	}
	_, err := cl.Put(ctx, k, []byte("1"), kvclient.WithTTL(time.Minute))
	require.NoError(t, err)
	m := meta()
	require.Greater(t, m.TTL, time.Duration(0))
	require.LessOrEqual(t, m.TTL, time.Minute)
	_, err = cl.Incr(ctx, k, 1)
	require.NoError(t, err)
	require.NotZero(t, meta().TTL, "an increment keeps the TTL")

	require.NoError(t, cl.Persist(ctx, k))
	require.Zero(t, meta().TTL, "persist removes the expiry")
	require.NoError(t, cl.Expire(ctx, k, time.Hour))
	m = meta()
	require.Greater(t, m.TTL, time.Minute)
	v, err := cl.Get(ctx, k)
	require.NoError(t, err)
	require.Equal(t, "2", string(v), "expire and persist keep the value")

	require.ErrorIs(t, cl.Expire(ctx, missing, time.Second), kvclient.ErrNotFound)
	require.ErrorIs(t, cl.Persist(ctx, missing), kvclient.ErrNotFound)
	for _, bad := range []time.Duration{0, -time.Second, time.Microsecond} {
		err := cl.Expire(ctx, k, bad)
		require.ErrorIs(t, err, kvclient.ErrBadTTL, fmt.Sprint(bad))
	}
	require.Greater(t, meta().TTL, time.Minute, "a refused expire changed nothing")

	require.NoError(t, cl.Expire(ctx, k, 100*time.Millisecond))
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		_, err := cl.Get(ctx, k)
		return errors.Is(err, kvclient.ErrNotFound)
	}, "%s still read after it expired", k)
}
