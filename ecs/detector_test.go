package ecs

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// serveHealth runs a gRPC health service on a free port, SERVING for the
// given incarnations, as a kvserver does for its own.
func serveHealth(t *testing.T, incarnations ...uint64) (*health.Server, string) {
	t.Helper()
	hs, _, addr := serveHealthOn(t, "127.0.0.1:0", incarnations...)
	return hs, addr
}

// serveHealthOn is serveHealth on addr; stop ends the server before the
// test does.
func serveHealthOn(t *testing.T, addr string, incarnations ...uint64) (hs *health.Server, stop func(), _ string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	gs := grpc.NewServer()
	hs = health.NewServer()
	for _, inc := range incarnations {
		hs.SetServingStatus(etcdkeys.HealthService(inc), healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return hs, gs.Stop, lis.Addr().String()
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
	hs, addr := serveHealth(t, 7)
	d := newDetector(zaptest.NewLogger(t), 10*time.Millisecond, 500*time.Millisecond, 3, nil)
	defer d.stop()
	ctx := context.Background()
	d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 7}})

	ev := nextEvent(t, d)
	require.Equal(t, healthEvent{id: "s1", incarnation: 7, up: true, at: ev.at}, ev)

	hs.SetServingStatus(etcdkeys.HealthService(7), healthpb.HealthCheckResponse_NOT_SERVING)
	ev = nextEvent(t, d)
	require.False(t, ev.up, "after three failed probes")

	hs.SetServingStatus(etcdkeys.HealthService(7), healthpb.HealthCheckResponse_SERVING)
	require.True(t, nextEvent(t, d).up)

	// A new incarnation gets a fresh loop; a target that leaves stops.
	hs.SetServingStatus(etcdkeys.HealthService(8), healthpb.HealthCheckResponse_SERVING)
	d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 8}})
	require.Equal(t, uint64(8), nextEvent(t, d).incarnation)
	d.sync(ctx, nil)
	require.Empty(t, d.loops)
}

func TestDetectorDeadServer(t *testing.T) {
	_, addr := serveHealth(t, 0)
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

// TestDetectorVerdictIsTheAnswerersIncarnation: a server's incarnation
// dies (kill -9) and another process takes its address while the dead
// incarnation's member record lives on (its lease has not run out): the
// server restarted and not registered yet, or something else. That
// process's answers must not report the dead incarnation up; only once
// the record names the new incarnation do its answers count, for it.
func TestDetectorVerdictIsTheAnswerersIncarnation(t *testing.T) {
	tests := []struct {
		name  string
		serve func(gs *grpc.Server) // the services the new process offers
		next  bool                  // it is incarnation 8 of the server
	}{
		{"the next incarnation", func(gs *grpc.Server) {
			hs := health.NewServer() // SERVING for "" too
			hs.SetServingStatus(etcdkeys.HealthService(8), healthpb.HealthCheckResponse_SERVING)
			healthpb.RegisterHealthServer(gs, hs)
		}, true},
		{"a process that serves any health", func(gs *grpc.Server) {
			healthpb.RegisterHealthServer(gs, health.NewServer())
		}, false},
		{"a gRPC server without health", func(*grpc.Server) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stop, addr := serveHealthOn(t, "127.0.0.1:0", 7)
			d := newDetector(zaptest.NewLogger(t), 10*time.Millisecond, 500*time.Millisecond, 2, nil)
			defer d.stop()
			ctx := context.Background()
			d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 7}})
			require.True(t, nextEvent(t, d).up)
			stop() // the incarnation dies; its record stays
			ev := nextEvent(t, d)
			require.Equal(t, healthEvent{id: "s1", incarnation: 7, up: false, at: ev.at}, ev)

			var probes atomic.Int64
			lis, err := net.Listen("tcp", addr)
			require.NoError(t, err)
			gs := grpc.NewServer(
				grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
					probes.Add(1)
					return h(ctx, req)
				}),
				grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
					probes.Add(1)
					return status.Error(codes.Unimplemented, "unknown service")
				}))
			tt.serve(gs)
			go func() { _ = gs.Serve(lis) }()
			defer gs.Stop()
			testutil.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
				return probes.Load() >= int64(3*d.failures)
			}, "the new process answers the probes")
			select {
			case ev := <-d.out:
				t.Fatalf("another process's answers made a verdict (up: %v) on incarnation %d", ev.up, ev.incarnation)
			default:
			}

			if tt.next { // registered now: its answers count, for it
				d.sync(ctx, []probeTarget{{id: "s1", addr: addr, incarnation: 8}})
				ev = nextEvent(t, d)
				require.Equal(t, healthEvent{id: "s1", incarnation: 8, up: true, at: ev.at}, ev)
			}
		})
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
	dial := func(string, uint64) (healthChecker, error) { return switchChecker{&slow}, nil }
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
