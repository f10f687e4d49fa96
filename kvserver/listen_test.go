package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestMaxConnections: a call on a connection over the bound fails with
// ResourceExhausted naming the bound, and is served once one closes.
func TestMaxConnections(t *testing.T) {
	c := newClusterWith(t, 1, func(cfg *config.KVServer) { cfg.MaxConnections = 1 },
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	addr := c.node("s1").addr
	getRing := func(cc *grpc.ClientConn, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := kvpb.NewKVClient(cc).GetRing(ctx, &kvpb.GetRingRequest{})
		return err
	}
	dial := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		return cc
	}
	first, second := dial(), dial()
	defer second.Close()
	require.NoError(t, getRing(first, 5*time.Second))
	err := getRing(second, 5*time.Second)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "a second connection is over the bound: %v", err)
	require.ErrorContains(t, err, "max-connections (ECSKV_MAX_CONNECTIONS) is 1")
	require.EqualValues(t, 1, promtest.ToFloat64(c.srv("s1").metrics.connsRefused))
	require.NoError(t, first.Close())
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return getRing(second, time.Second) == nil },
		"the waiting connection is served once the first closes")
}

// TestMaxMessageBytes: a message over the bound is refused with a clear
// error before the server reads it all.
func TestMaxMessageBytes(t *testing.T) {
	c := newClusterWith(t, 1, func(cfg *config.KVServer) { cfg.MaxMessageBytes = 6 << 20 },
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	c.waitEpoch(c.publishInitial("s1").Epoch, "s1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := make([]byte, 7<<20)
	_, err := c.kv("s1").Put(ctx, &kvpb.PutRequest{Key: []byte("k"), Value: big}, grpc.MaxCallSendMsgSize(8<<20))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "larger than max")
	// Within the message bound but over the cluster's value limit.
	_, err = c.kv("s1").Put(ctx, &kvpb.PutRequest{Key: []byte("k"), Value: big[:5000]})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "value too large")
}
