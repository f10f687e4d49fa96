package kvserver

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var chain3 = []string{"s1", "s2", "s3"}

// newChain3 starts s1..sN and publishes every partition as [s1 s2 s3].
func newChain3(t *testing.T, n int) *tcluster {
	t.Helper()
	c := newCluster(t, n)
	c.publishInitial(chain3...)
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, "s"+string(rune('0'+i)))
	}
	c.waitEpoch(1, ids...)
	return c
}

// storeHas reads key straight from server id's storage.
func (c *tcluster) storeHas(id, key string) (string, bool) {
	c.t.Helper()
	rec, ok, err := c.srv(id).store.Get(partOf(key), nil, []byte(key), nowMs())
	require.NoError(c.t, err)
	return string(rec.Value), ok
}

// getAt sends one Get to server id.
func (c *tcluster) getAt(id, key string, anyMember bool) (*kvpb.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.kv(id).Get(ctx, &kvpb.GetRequest{Key: []byte(key), AnyMember: anyMember})
}

// TestChainWriteAckedOnEveryMember checks DESIGN §4: a write is answered only
// once every member applied it; the statuses; reads at the tail and, when
// clean, at any member.
func TestChainWriteAckedOnEveryMember(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	key := keysIn(5, 1, "ack")[0]
	p := partOf(key)

	require.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, key, "v1"))
	// No waiting: the answer means all three applied it.
	for _, id := range chain3 {
		v, ok := c.storeHas(id, key)
		assert.True(t, ok, "%s lacks an acknowledged write", id)
		assert.Equal(t, "v1", v, id)
		d := c.digest(id, p)[p]
		assert.EqualValues(t, 1, d.AppliedSeq, id)
		assert.EqualValues(t, 1, d.Keys, id)
	}
	assert.Equal(t, kvpb.Status_UPDATE, w.mustPut(t, key, "v2"))
	v, ok := w.mustGet(t, key)
	assert.True(t, ok)
	assert.Equal(t, "v2", v)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := w.del(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, st)
	st, err = w.del(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_NOT_FOUND, st)
	_, ok = w.mustGet(t, key)
	assert.False(t, ok)
	for _, id := range chain3 {
		_, ok := c.storeHas(id, key)
		assert.False(t, ok, "%s still holds a deleted key", id)
	}
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, key, "v3"), "a put after delete creates")

	// Reads: the tail always; head and middle with any_member once they hold
	// a read lease; the head never without any_member.
	for _, id := range chain3 {
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			resp, err := c.getAt(id, key, true)
			return err == nil && resp.Status == kvpb.Status_SUCCESS && string(resp.Value) == "v3"
		}, "any_member read at %s", id)
	}
	// Without any_member the head forwards the read to the tail.
	resp, err := c.getAt("s1", key, false)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, resp.Status)
	assert.Equal(t, "s3", resp.Server)
	resp, err = c.getAt("s3", "missing-"+key, false)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_NOT_FOUND, resp.Status)

	c.waitConverged(chain3, allPartitions(), 5*time.Second)
}

// TestChainIdempotentRetry: the same request id twice returns the first
// answer and applies once (DESIGN §4 idempotence).
func TestChainIdempotentRetry(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	key := keysIn(3, 1, "idem")[0]
	p := partOf(key)

	h := w.header()
	st, err := w.putH(ctx, h, key, "first", 0)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, st)
	seq := c.digest("s3", p)[p].AppliedSeq
	st, err = w.putH(ctx, h, key, "first", 0)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, st, "a retried create must answer SUCCESS, not UPDATE")
	assert.Equal(t, seq, c.digest("s3", p)[p].AppliedSeq, "retry applied again")

	// The same request id for another write is refused, not taken for a
	// retry: another value, or a delete of the key.
	_, err = w.putH(ctx, h, key, "second", 0)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "request id already used")
	_, err = w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, _ *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Delete(ctx, &kvpb.DeleteRequest{Header: h, Key: []byte(key)})
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Equal(t, seq, c.digest("s3", p)[p].AppliedSeq, "a refused write applied")
	v, _ := w.mustGet(t, key)
	assert.Equal(t, "first", v)

	// A delete retried answers SUCCESS both times, not NOT_FOUND.
	hd := w.header()
	for range 2 {
		resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, _ *ringmeta.Ring) (*kvpb.Response, error) {
			return kv.Delete(ctx, &kvpb.DeleteRequest{Header: hd, Key: []byte(key)})
		})
		require.NoError(t, err)
		assert.Equal(t, kvpb.Status_SUCCESS, resp.Status)
	}

	// Concurrent duplicates of one request: one apply, one answer for all.
	key2 := keysIn(3, 1, "idem2")[0]
	h2 := w.header()
	before := c.digest("s3", p)[p].AppliedSeq
	var wg sync.WaitGroup
	sts := make([]kvpb.Status, 4)
	for i := range sts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[i], _ = w.putH(ctx, h2, key2, "x", 0)
		}()
	}
	wg.Wait()
	for i, st := range sts {
		assert.Equal(t, kvpb.Status_SUCCESS, st, "duplicate %d", i)
	}
	assert.Equal(t, before+1, c.digest("s3", p)[p].AppliedSeq)
	c.waitConverged(chain3, []int{p}, 5*time.Second)
}

// TestChainBadInput: limits are enforced at the gRPC layer and misrouted
// requests get SERVER_NOT_RESPONSIBLE with the server's epoch.
func TestChainBadInput(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Before any ring: not serving.
	resp, err := c.kv("s1").Put(ctx, &kvpb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_STOPPED, resp.Status)

	c.publishInitial(chain3...)
	c.waitEpoch(1, chain3...)
	key := "bad-input"
	w := c.client()
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, key, "kept"))
	for _, tc := range []struct {
		name string
		req  *kvpb.PutRequest
	}{
		{"key too large", &kvpb.PutRequest{Key: []byte(strings.Repeat("k", 65)), Value: []byte("v")}},
		{"value too large", &kvpb.PutRequest{Key: []byte(key), Value: make([]byte, 4097)}},
		{"empty key", &kvpb.PutRequest{Key: nil, Value: []byte("v")}},
		{"negative ttl", &kvpb.PutRequest{Key: []byte(key), Value: []byte("v"), TtlMs: -1}},
		// now + ttl would overflow into an expiry in the past.
		{"ttl that overflows", &kvpb.PutRequest{Key: []byte(key), Value: []byte("v"), TtlMs: math.MaxInt64 - 1000}},
		{"ttl beyond 100 years", &kvpb.PutRequest{Key: []byte(key), Value: []byte("v"), TtlMs: MaxTTLMs + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := c.curRing().Chain(partOf(string(tc.req.Key))).Head()
			_, err := c.kv(head).Put(ctx, tc.req)
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		})
	}
	_, err = c.kv("s3").Get(ctx, &kvpb.GetRequest{Key: []byte(strings.Repeat("k", 65))})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	// The refused puts changed nothing.
	v, ok := w.mustGet(t, key)
	assert.True(t, ok)
	assert.Equal(t, "kept", v)
	// At the limits exactly: accepted.
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, strings.Repeat("k", 64), strings.Repeat("v", 4096)))

	// Writes at the middle or the tail that were forwarded already: not
	// responsible, with the server's epoch so the client knows to refresh.
	fwd := &kvpb.RequestHeader{ForwardedBy: "s9"}
	for _, id := range []string{"s2", "s3"} {
		resp, err := c.kv(id).Put(ctx, &kvpb.PutRequest{Header: fwd, Key: []byte(key), Value: []byte("v")})
		require.NoError(t, err)
		assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status, id)
		assert.EqualValues(t, 1, resp.Epoch, id)
		resp, err = c.kv(id).Delete(ctx, &kvpb.DeleteRequest{Header: fwd, Key: []byte(key)})
		require.NoError(t, err)
		assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status, id)
	}
	// A stale chain version is fenced off.
	resp, err = c.kv("s1").Put(ctx, &kvpb.PutRequest{
		Header: &kvpb.RequestHeader{ChainVersion: 7}, Key: []byte(key), Value: []byte("v")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)

	// After a new epoch (no chain changes) the answer carries it.
	c.publish(func(*ringmeta.Ring) {})
	c.waitEpoch(2, chain3...)
	resp, err = c.kv("s2").Put(ctx, &kvpb.PutRequest{Header: fwd, Key: []byte(key), Value: []byte("v")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
	assert.EqualValues(t, 2, resp.Epoch)
	assert.Equal(t, kvpb.Status_UPDATE, w.mustPut(t, key, "v"))
}
