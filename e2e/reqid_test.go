//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// testRequestIDReuse is the attack of a client that reuses one request id
// for different writes (a buggy or hostile client): a delete, or a put of
// another value, under the id of an earlier put of the key must be refused
// with InvalidArgument and change nothing, while a true retry of the put,
// through the head or forwarded by any other server, is answered as the
// first attempt was and applied once.
func testRequestIDReuse(t *testing.T, c *framework.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := c.Client(t)
	ring, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	const key = "reqid-reuse"
	ch := ring.Chain(ring.PartitionOf(nil, []byte(key)))
	kv := func(id string) kvpb.KVClient {
		srv, ok := ring.Server(id)
		require.True(t, ok, id)
		conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return kvpb.NewKVClient(conn)
	}
	head := kv(ch.Head())
	h := &kvpb.RequestHeader{ClientId: 0x5eed, Seq: 1}
	resp, err := head.Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: []byte("v1")})
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, resp.Status, resp.Message)

	_, err = head.Delete(ctx, &kvpb.DeleteRequest{Header: h, Key: []byte(key)})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a delete under the put's id: %v", err)
	assert.Contains(t, err.Error(), "request id already used")
	_, err = head.Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: []byte("v2")})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "another value under the put's id: %v", err)
	// Ids are remembered per partition: another key of the same partition
	// is refused too.
	other := ""
	for i := 0; other == ""; i++ {
		if k := fmt.Sprintf("%s-%d", key, i); ring.PartitionOf(nil, []byte(k)) == ring.PartitionOf(nil, []byte(key)) {
			other = k
		}
	}
	_, err = head.Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(other), Value: []byte("v1")})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "another key under the put's id: %v", err)

	for _, id := range ring.Chain(ring.PartitionOf(nil, []byte(key))).Members {
		resp, err = kv(id).Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: []byte("v1")})
		require.NoError(t, err, "a retry through %s", id)
		assert.Equal(t, kvpb.Status_SUCCESS, resp.Status, "a retry through %s is answered as the first attempt", id)
	}
	got, err := cli.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "v1", string(got), "the refused writes changed nothing")
	_, err = cli.Get(ctx, other)
	assert.ErrorIs(t, err, kvclient.ErrNotFound, "the refused put under another key stored nothing")
}
