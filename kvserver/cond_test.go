package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// condPut writes key=val under cond with request header h.
func (w *tclient) condPut(ctx context.Context, h *kvpb.RequestHeader, key, val string, ttlMs int64, cond *kvpb.Condition, prev bool) *kvpb.Response {
	w.c.t.Helper()
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Put(ctx, &kvpb.PutRequest{Header: withVersion(h, r, key), Key: []byte(key), Value: []byte(val), TtlMs: ttlMs, Cond: cond, ReturnPrevious: prev})
	})
	require.NoError(w.c.t, err)
	return resp
}

func (w *tclient) condDel(ctx context.Context, key string, cond *kvpb.Condition) *kvpb.Response {
	w.c.t.Helper()
	h := w.header()
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Delete(ctx, &kvpb.DeleteRequest{Header: withVersion(h, r, key), Key: []byte(key), Cond: cond})
	})
	require.NoError(w.c.t, err)
	return resp
}

func (w *tclient) incr(ctx context.Context, h *kvpb.RequestHeader, key string, delta int64) *kvpb.Response {
	w.c.t.Helper()
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Incr(ctx, &kvpb.IncrRequest{Header: withVersion(h, r, key), Key: []byte(key), Delta: delta})
	})
	require.NoError(w.c.t, err)
	return resp
}

func (w *tclient) expire(ctx context.Context, key string, ttlMs int64, persist bool) *kvpb.Response {
	w.c.t.Helper()
	h := w.header()
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Expire(ctx, &kvpb.ExpireRequest{Header: withVersion(h, r, key), Key: []byte(key), TtlMs: ttlMs, Persist: persist})
	})
	require.NoError(w.c.t, err)
	return resp
}

// getResp reads key at its tail.
func (w *tclient) getResp(ctx context.Context, key string) *kvpb.Response {
	w.c.t.Helper()
	resp, err := w.do(ctx, tailOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Get(ctx, &kvpb.GetRequest{Header: withVersion(&kvpb.RequestHeader{}, r, key), Key: []byte(key)})
	})
	require.NoError(w.c.t, err)
	return resp
}

func cond(k kvpb.Condition_Kind) *kvpb.Condition { return &kvpb.Condition{Kind: k} }

// TestChainConditionalWrites: conditions, versions, increments and expiry
// changes are decided at the head and what they wrote (or did not) is the
// same on every member.
func TestChainConditionalWrites(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := keysIn(5, 6, "cond")
	k, n, x := keys[0], keys[1], keys[2]

	resp := w.condPut(ctx, w.header(), k, "a", 0, cond(kvpb.Condition_ABSENT), false)
	require.Equal(t, kvpb.Status_SUCCESS, resp.Status)
	v1 := resp.Version
	require.NotZero(t, v1)
	resp = w.condPut(ctx, w.header(), k, "b", 0, cond(kvpb.Condition_ABSENT), false)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, resp.Status)
	require.Equal(t, v1, resp.Version, "a failed condition answers the current version")
	got := w.getResp(ctx, k)
	require.Equal(t, "a", string(got.Value))
	require.Equal(t, v1, got.Version, "a read answers the version of the value")

	resp = w.condPut(ctx, w.header(), k, "c", 0, &kvpb.Condition{Kind: kvpb.Condition_VERSION, Version: v1}, false)
	require.Equal(t, kvpb.Status_UPDATE, resp.Status)
	v2 := resp.Version
	require.Greater(t, v2, v1)
	resp = w.condPut(ctx, w.header(), k, "stale", 0, &kvpb.Condition{Kind: kvpb.Condition_VERSION, Version: v1}, false)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, resp.Status)
	require.Equal(t, v2, resp.Version)
	resp = w.condPut(ctx, w.header(), k, "d", 0, &kvpb.Condition{Kind: kvpb.Condition_VALUE, Value: []byte("c")}, true)
	require.Equal(t, kvpb.Status_UPDATE, resp.Status)
	require.True(t, resp.Existed)
	require.Equal(t, "c", string(resp.Value), "return_previous answers the value replaced")
	resp = w.condPut(ctx, w.header(), k, "e", 0, &kvpb.Condition{Kind: kvpb.Condition_VALUE, Value: []byte("c")}, false)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, resp.Status)

	require.Equal(t, kvpb.Status_CONDITION_FAILED, w.condDel(ctx, k, &kvpb.Condition{Kind: kvpb.Condition_VERSION, Version: v2}).Status)
	require.Equal(t, "d", string(w.getResp(ctx, k).Value))
	require.Equal(t, kvpb.Status_SUCCESS, w.condDel(ctx, k, cond(kvpb.Condition_EXISTS)).Status)
	resp = w.condPut(ctx, w.header(), k, "f", 0, cond(kvpb.Condition_EXISTS), false)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, resp.Status)
	require.Zero(t, resp.Version, "absent: version 0")
	require.Equal(t, kvpb.Status_SUCCESS, w.condPut(ctx, w.header(), k, "g", 0, &kvpb.Condition{Kind: kvpb.Condition_VERSION}, false).Status,
		"version 0 means absent")

	// Increments: absent counts as 0; only canonical integers; no overflow.
	require.Equal(t, "5", string(w.incr(ctx, w.header(), n, 5).Value))
	require.Equal(t, "-2", string(w.incr(ctx, w.header(), n, -7).Value))
	for _, bad := range []string{"abc", "007", "+1", " 1", "-0", ""} {
		_, err := w.put(ctx, x, bad)
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_NOT_AN_INTEGER, w.incr(ctx, w.header(), x, 1).Status, "%q", bad)
		require.Equal(t, bad, string(w.getResp(ctx, x).Value), "a failed increment wrote nothing")
	}
	_, err := w.put(ctx, x, "9223372036854775807")
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_OVERFLOW, w.incr(ctx, w.header(), x, 1).Status)
	require.Equal(t, "9223372036854775806", string(w.incr(ctx, w.header(), x, -1).Value))

	// An increment keeps the expiry; expire and persist change only it.
	ttlKey := keys[3]
	require.Equal(t, kvpb.Status_SUCCESS, w.condPut(ctx, w.header(), ttlKey, "1", 60_000, nil, false).Status)
	require.Equal(t, "2", string(w.incr(ctx, w.header(), ttlKey, 1).Value))
	got = w.getResp(ctx, ttlKey)
	require.Equal(t, "2", string(got.Value))
	require.Greater(t, got.TtlMs, int64(0))
	require.LessOrEqual(t, got.TtlMs, int64(60_000))
	require.Equal(t, kvpb.Status_UPDATE, w.expire(ctx, ttlKey, 0, true).Status)
	got = w.getResp(ctx, ttlKey)
	require.Equal(t, "2", string(got.Value))
	require.Zero(t, got.TtlMs, "persist removed the expiry")
	require.Equal(t, kvpb.Status_NOT_FOUND, w.expire(ctx, keys[4], 1000, false).Status)
	require.Equal(t, kvpb.Status_UPDATE, w.expire(ctx, ttlKey, 200, false).Status)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		return w.getResp(ctx, ttlKey).Status == kvpb.Status_NOT_FOUND
	}, "expired key still read")

	c.waitConverged(chain3, []int{5}, 5*time.Second)
}

// TestChainConditionalRetryAfterFailover: a retried increment or failed
// condition gets its first answer, from a new head too, and applies once.
func TestChainConditionalRetryAfterFailover(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const p = 7
	keys := keysIn(p, 2, "retry")
	n, k := keys[0], keys[1]

	hi := w.header()
	require.Equal(t, "10", string(w.incr(ctx, hi, n, 10).Value))
	_, err := w.put(ctx, k, "held")
	require.NoError(t, err)
	hc := w.header()
	failed := w.condPut(ctx, hc, k, "other", 0, cond(kvpb.Condition_ABSENT), true)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, failed.Status)
	require.Equal(t, "held", string(failed.Value))

	seq := c.digest("s3", p)[p].AppliedSeq
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members = []string{"s2", "s3"} })
	c.waitEpoch(r.Epoch, "s2", "s3")
	_, err = w.put(ctx, k, "changed") // the condition would now fail with another version
	require.NoError(t, err)

	assert.Equal(t, "10", string(w.incr(ctx, hi, n, 10).Value), "a retried increment answers its first value")
	again := w.condPut(ctx, hc, k, "other", 0, cond(kvpb.Condition_ABSENT), true)
	assert.Equal(t, failed.Status, again.Status)
	assert.Equal(t, failed.Version, again.Version)
	assert.Equal(t, "held", string(again.Value), "a retry answers what the first attempt saw")
	assert.Equal(t, seq+1, c.digest("s3", p)[p].AppliedSeq, "only the plain put applied after the failover")
	assert.Equal(t, "10", string(w.getResp(ctx, n).Value))
}
