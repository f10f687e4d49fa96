package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestForwarding: any server answers any key (DESIGN §7): a write sent to
// a middle, a tail or a server outside the chain is applied by the head,
// and a read sent anywhere is served by the tail, each answer naming the
// server that served it; the request goes through the chain exactly as a
// direct one does (its request id, its fencing).
func TestForwarding(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4) // s4 is in no chain
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := keysIn(5, 1, "fwd")[0]
	p := partOf(key)
	// The new chain serves once its head probed its successor.
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.kv("s1").Put(ctx, &kvpb.PutRequest{Key: []byte(key), Value: []byte("v0")})
		return err == nil && resp.Status == kvpb.Status_SUCCESS
	}, "the chain never served")

	for i, id := range []string{"s2", "s3", "s4"} {
		h := &kvpb.RequestHeader{ClientId: 77, Seq: uint64(i + 1)}
		val := []byte("v-" + id)
		resp, err := c.kv(id).Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: val})
		require.NoError(t, err, id)
		require.Contains(t, []kvpb.Status{kvpb.Status_SUCCESS, kvpb.Status_UPDATE}, resp.Status, "%s: %s", id, resp.Message)
		assert.Equal(t, "s1", resp.Server, "written through %s", id)
		// A retry through another server is the same write, answered once.
		before := c.digest("s3", p)[p].AppliedSeq
		resp, err = c.kv("s4").Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: val})
		require.NoError(t, err, id)
		require.Contains(t, []kvpb.Status{kvpb.Status_SUCCESS, kvpb.Status_UPDATE}, resp.Status)
		assert.Equal(t, before, c.digest("s3", p)[p].AppliedSeq, "the retry applied again")

		for _, at := range []string{"s1", "s2", "s4"} {
			got, err := c.kv(at).Get(ctx, &kvpb.GetRequest{Key: []byte(key)})
			require.NoError(t, err, at)
			require.Equal(t, kvpb.Status_SUCCESS, got.Status, at)
			assert.Equal(t, string(val), string(got.Value), "read through %s", at)
			assert.Equal(t, "s3", got.Server, "read through %s", at)
		}
	}
	resp, err := c.kv("s4").Delete(ctx, &kvpb.DeleteRequest{Key: []byte(key)})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, resp.Status)
	assert.Equal(t, "s1", resp.Server)
	resp, err = c.kv("s2").Get(ctx, &kvpb.GetRequest{Key: []byte(key)})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_NOT_FOUND, resp.Status)

	// A request fenced by another chain version is refused, not forwarded:
	// the client's view is stale, whoever it reached.
	resp, err = c.kv("s2").Put(ctx, &kvpb.PutRequest{Header: &kvpb.RequestHeader{ChainVersion: 99}, Key: []byte(key), Value: []byte("x")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
}

// TestForwardingOff: with forward false a server refuses what it does not
// serve, as the Go library expects of a misrouted request.
func TestForwardingOff(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, func(cfg *config.KVServer) { cfg.Forward = false }, grpc.WithTransportCredentials(insecure.NewCredentials()))
	c.publishInitial(chain3...)
	c.waitEpoch(1, chain3...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.kv("s2").Put(ctx, &kvpb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
	resp, err = c.kv("s1").Get(ctx, &kvpb.GetRequest{Key: []byte("k")})
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
}
