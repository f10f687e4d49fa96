package kvserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// bigValue is the largest value the test ring allows.
var bigValue = strings.Repeat("v", 4096)

// newBatchBoundCluster starts one server with the Batch bounds given, holding
// bigValue under "big".
func newBatchBoundCluster(t *testing.T, configure func(*config.KVServer)) *tcluster {
	t.Helper()
	c := newClusterWith(t, 1, configure, grpc.WithTransportCredentials(insecure.NewCredentials()))
	c.waitEpoch(c.publishInitial("s1").Epoch, "s1")
	c.client().mustPut(t, "big", bigValue)
	return c
}

// slowReader dials addr with gRPC's fixed 64 KiB flow-control windows (no
// window growth), as a client that reads little, and opens a Batch stream.
func slowReader(t *testing.T, addr string) kvpb.KV_BatchClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := kvpb.NewKVClient(cc).Batch(ctx)
	require.NoError(t, err)
	return stream
}

func getsOf(key string, n int) []*kvpb.BatchOp {
	ops := make([]*kvpb.BatchOp, n)
	for i := range ops {
		ops[i] = bget(nil, key)
		ops[i].Id = uint64(i + 1)
	}
	return ops
}

// TestBatchStalledStreamIsClosed: a client that sends gets and never reads
// makes the stream stop reading at max-batch-queued-bytes; after
// batch-stall-timeout it is closed with ResourceExhausted naming the bound,
// whether the client keeps its side open or has closed it.
func TestBatchStalledStreamIsClosed(t *testing.T) {
	for _, tt := range []struct {
		name      string
		closeSend bool
	}{
		{name: "still sending"},
		{name: "half-closed", closeSend: true},
	} {
		t.Run(tt.name, func(t *testing.T) { testBatchStalled(t, tt.closeSend) })
	}
}

func testBatchStalled(t *testing.T, closeSend bool) {
	const limit, stall, n = 64 << 10, 300 * time.Millisecond, 1000
	c := newBatchBoundCluster(t, func(cfg *config.KVServer) {
		cfg.MaxBatchQueuedBytes, cfg.BatchStallTimeout = limit, stall
	})
	m := c.srv("s1").metrics
	stream := slowReader(t, c.node("s1").addr)
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: getsOf("big", n)}))
	if closeSend {
		require.NoError(t, stream.CloseSend())
	}

	var most float64
	testutil.Eventually(t, 10*time.Second, 2*time.Millisecond, func() bool {
		most = max(most, promtest.ToFloat64(m.batchQueued))
		return promtest.ToFloat64(m.batchClosed) == 1
	}, "the stalled stream is closed")
	answer := float64(len(bigValue) + 64 + resultOverhead)
	require.LessOrEqual(t, most, limit+answer, "queued answer bytes stay within the bound plus one answer")
	served := promtest.ToFloat64(m.requests.WithLabelValues(opGet, "SUCCESS"))
	require.Less(t, served, float64(n)/4, "the stream stopped reading requests")
	require.GreaterOrEqual(t, promtest.ToFloat64(m.batchStalls.WithLabelValues(boundQueuedBytes)), 1.0)
	t.Logf("served %v gets of %d; at most %v bytes queued", served, n, most)

	// Reading now, the client gets the answers sent before the close, then
	// the error.
	got := 0
	for {
		msg, err := stream.Recv()
		if err != nil {
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			require.ErrorContains(t, err, "max-batch-queued-bytes (ECSKV_MAX_BATCH_QUEUED_BYTES) 65536")
			require.ErrorContains(t, err, "batch-stall-timeout (ECSKV_BATCH_STALL_TIMEOUT) 300ms")
			break
		}
		for _, r := range msg.Results {
			require.Equal(t, bigValue, string(r.Response.GetValue()))
		}
		got += len(msg.Results)
	}
	require.Positive(t, got)
	require.LessOrEqual(t, float64(got), served)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		return promtest.ToFloat64(m.batchQueued) == 0
	}, "the closed stream holds nothing")
}

// TestBatchSlowReaderIsServed: a client that reads slowly but steadily
// holds its stream at the bound without being closed, and gets every answer.
func TestBatchSlowReaderIsServed(t *testing.T) {
	const n = 60
	c := newBatchBoundCluster(t, func(cfg *config.KVServer) {
		cfg.MaxBatchQueuedBytes, cfg.BatchStallTimeout = 64<<10, time.Second
	})
	m := c.srv("s1").metrics
	stream := slowReader(t, c.node("s1").addr)
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: getsOf("big", n)}))
	require.NoError(t, stream.CloseSend())
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool {
		return promtest.ToFloat64(m.batchStalls.WithLabelValues(boundQueuedBytes)) > 0
	}, "the stream reaches its bound")
	got := 0
	for got < n {
		msg, err := stream.Recv()
		require.NoError(t, err, "after %d answers", got)
		got += len(msg.Results)
		time.Sleep(20 * time.Millisecond) // the slow reader under test
	}
	require.Zero(t, promtest.ToFloat64(m.batchClosed))
}

// TestBatchInflightBound: past max-batch-inflight writes the stream waits
// for a slot (and counts it); every write is still answered.
func TestBatchInflightBound(t *testing.T) {
	c := newBatchBoundCluster(t, func(cfg *config.KVServer) { cfg.MaxBatchInflight = 1 })
	w := c.client()
	var ops []*kvpb.BatchOp
	for i := range 20 {
		ops = append(ops, bput(w.header(), "k"+strings.Repeat("x", i), "v", 0))
	}
	for _, res := range c.batchSettled(t, "s1", ops...) {
		require.Zero(t, res.Code, res.Error)
		require.Equal(t, kvpb.Status_SUCCESS, res.Response.Status)
	}
	stalls := promtest.ToFloat64(c.srv("s1").metrics.batchStalls.WithLabelValues(boundInflight))
	require.GreaterOrEqual(t, stalls, 1.0, "the second write waited for the first")
}

func TestChunk(t *testing.T) {
	tests := []struct {
		name        string
		charges     []int
		wantN, want int
	}{
		{name: "one", charges: []int{10}, wantN: 1, want: 10},
		{name: "all fit", charges: []int{10, 20, 30}, wantN: 3, want: 60},
		{name: "stops at the bound", charges: []int{batchChunkBytes - 10, 10, 1}, wantN: 2, want: batchChunkBytes},
		{name: "a large one goes alone", charges: []int{2 * batchChunkBytes, 1}, wantN: 1, want: 2 * batchChunkBytes},
		{name: "a large one waits for the next", charges: []int{1, batchChunkBytes}, wantN: 1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, bytes := chunk(tt.charges)
			require.Equal(t, tt.wantN, n)
			require.Equal(t, tt.want, bytes)
		})
	}
}

// TestBatchOutStallTimer: the stall timer runs while the answers are at the
// bound, whatever the receiver does, restarts when the client reads, and
// stops below the bound.
func TestBatchOutStallTimer(t *testing.T) {
	const stall = 100 * time.Millisecond
	newOut := func() (*batchOut, *int) {
		stalls := 0
		return &batchOut{
			limit: 4 * resultOverhead, stallAfter: stall, onStall: func() { stalls++ },
			gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "q"}),
			wake:  make(chan struct{}, 1), room: make(chan struct{}, 1), stalled: make(chan struct{}),
		}, &stalls
	}
	fill := func(b *batchOut, n int) {
		for i := range n {
			b.add(&kvpb.BatchResult{Id: uint64(i + 1)})
		}
	}
	t.Run("fires at the bound", func(t *testing.T) {
		b, stalls := newOut()
		fill(b, 3)
		require.Zero(t, *stalls)
		fill(b, 2)
		require.Equal(t, 1, *stalls)
		select {
		case <-b.stalled:
		case <-time.After(10 * time.Second):
			t.Fatal("the stall timer did not fire")
		}
		require.ErrorIs(t, b.stallErr(), ErrBatchStalled)
	})
	t.Run("stops below the bound", func(t *testing.T) {
		b, _ := newOut()
		fill(b, 5)
		b.release(b.queuedBytes())
		require.Zero(t, promtest.ToFloat64(b.gauge))
		select {
		case <-b.stalled:
			t.Fatal("fired below the bound")
		case <-time.After(3 * stall):
		}
	})
	t.Run("restarts while the client reads", func(t *testing.T) {
		b, _ := newOut()
		fill(b, 8)
		began := time.Now()
		for range 4 { // one answer read every half stall: progress
			time.Sleep(stall / 2) // the client's pace under test
			b.release(resultOverhead + 2)
		}
		<-b.stalled
		require.GreaterOrEqual(t, time.Since(began), 2*stall+stall)
	})
	t.Run("abandon stops it", func(t *testing.T) {
		b, _ := newOut()
		fill(b, 5)
		b.abandon()
		select {
		case <-b.stalled:
			t.Fatal("fired after abandon")
		case <-time.After(3 * stall):
		}
	})
}
