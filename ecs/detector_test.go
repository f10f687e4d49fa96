package ecs

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveHealth runs a gRPC health service on a free port.
func serveHealth(t *testing.T) (*health.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return hs, lis.Addr().String()
}

func nextEvent(t *testing.T, d *detector) healthEvent {
	t.Helper()
	select {
	case ev := <-d.out:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no health event")
		return healthEvent{}
	}
}

func TestDetectorProbesGRPCHealth(t *testing.T) {
	hs, addr := serveHealth(t)
	d := newDetector(zaptest.NewLogger(t), 10*time.Millisecond, 500*time.Millisecond, 3, nil)
	defer d.stop()
	ctx := context.Background()
	d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 7}})

	ev := nextEvent(t, d)
	require.Equal(t, healthEvent{id: "s1", incarnation: 7, up: true, at: ev.at}, ev)

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	ev = nextEvent(t, d)
	require.False(t, ev.up, "after three failed probes")

	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	require.True(t, nextEvent(t, d).up)

	// A new incarnation gets a fresh loop; a target that leaves stops.
	d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 8}})
	require.Equal(t, uint64(8), nextEvent(t, d).incarnation)
	d.sync(ctx, nil)
	require.Empty(t, d.loops)
}

func TestDetectorDeadServer(t *testing.T) {
	_, addr := serveHealth(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := lis.Addr().String()
	require.NoError(t, lis.Close())

	d := newDetector(zaptest.NewLogger(t), 10*time.Millisecond, 200*time.Millisecond, 2, nil)
	defer d.stop()
	d.sync(context.Background(), []probeTarget{{id: "dead", addr: dead}, {id: "live", addr: addr}})
	ev := nextEvent(t, d)
	require.Equal(t, "live", ev.id, "a server that never answered gets no verdict: its lease decides")
	select {
	case ev := <-d.out:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// slowChecker never answers in time.
type slowChecker struct{}

func (slowChecker) check(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
func (slowChecker) close() {}

func TestDetectorTimeoutsNeedSilence(t *testing.T) {
	var slow atomic.Bool
	dial := func(string) (healthChecker, error) { return switchChecker{&slow}, nil }
	d := newDetector(zaptest.NewLogger(t), 5*time.Millisecond, 5*time.Millisecond, 2, dial)
	d.silence = 300 * time.Millisecond
	defer d.stop()
	d.sync(context.Background(), []probeTarget{{id: "s1", addr: "x"}})
	require.True(t, nextEvent(t, d).up)
	start := time.Now()
	slow.Store(true)
	ev := nextEvent(t, d)
	require.False(t, ev.up)
	require.GreaterOrEqual(t, time.Since(start), d.silence, "timeouts alone wait for the silence")
}

// switchChecker answers, or times out while slow is set.
type switchChecker struct{ slow *atomic.Bool }

func (c switchChecker) check(ctx context.Context) error {
	if c.slow.Load() {
		return slowChecker{}.check(ctx)
	}
	return nil
}
func (switchChecker) close() {}
