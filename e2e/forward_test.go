//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestAnyServerAnswersAnyKey is a client that knows nothing of the ring
// (grpcurl, another language): it sends every put, get and delete to one
// server it picked, each server in turn. Every request is served, by the
// key's head for writes and its tail for reads, as the answers say.
func TestAnyServerAnswersAnyKey(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(5))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ring, err := c.Client(t).RefreshRing(ctx)
	require.NoError(t, err)
	for _, srv := range ring.Servers {
		conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		kv := kvpb.NewKVClient(conn)
		for i := range 20 {
			key := []byte(fmt.Sprintf("thin-%s-%d", srv.ID, i))
			ch := ring.Chain(ring.PartitionOf(nil, key))
			resp, err := untilReady(ctx, func() (*kvpb.Response, error) { return kv.Put(ctx, &kvpb.PutRequest{Key: key, Value: key}) })
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status, "put %s through %s: %s", key, srv.ID, resp.Message)
			assert.Equal(t, ch.Head(), resp.Server, "put %s through %s", key, srv.ID)
			resp, err = untilReady(ctx, func() (*kvpb.Response, error) { return kv.Get(ctx, &kvpb.GetRequest{Key: key}) })
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status, "get %s through %s: %s", key, srv.ID, resp.Message)
			assert.Equal(t, string(key), string(resp.Value))
			assert.Equal(t, ch.Tail(), resp.Server, "get %s through %s", key, srv.ID)
			if i%2 == 0 {
				resp, err = untilReady(ctx, func() (*kvpb.Response, error) { return kv.Delete(ctx, &kvpb.DeleteRequest{Key: key}) })
				require.NoError(t, err)
				require.Equal(t, kvpb.Status_SUCCESS, resp.Status, "delete %s through %s", key, srv.ID)
				assert.Equal(t, ch.Head(), resp.Server)
				resp, err = untilReady(ctx, func() (*kvpb.Response, error) { return kv.Get(ctx, &kvpb.GetRequest{Key: key}) })
				require.NoError(t, err)
				assert.Equal(t, kvpb.Status_NOT_FOUND, resp.Status)
			}
		}
	}
}

// untilReady repeats call while it answers SERVER_NOT_READY (a partition
// whose new chain is still syncing, or a read lease pending), as a client
// would, until ctx ends.
func untilReady(ctx context.Context, call func() (*kvpb.Response, error)) (*kvpb.Response, error) {
	for {
		resp, err := call()
		if err != nil || resp.Status != kvpb.Status_SERVER_NOT_READY || ctx.Err() != nil {
			return resp, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
