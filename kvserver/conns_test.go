package kvserver

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

func newGateCluster(t *testing.T, configure func(*config.KVServer)) (*tcluster, string) {
	t.Helper()
	c := newClusterWith(t, 1, configure, grpc.WithTransportCredentials(insecure.NewCredentials()))
	return c, c.node("s1").addr
}

// silentConn opens a TCP connection that sends nothing.
func silentConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitClosed reads conn until the server closes it and returns how long
// that took; it fails the test after limit.
func waitClosed(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	require.NoError(t, conn.SetReadDeadline(began.Add(limit)))
	_, err := io.Copy(io.Discard, conn) // the server's HTTP/2 settings, then EOF or a reset
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v", limit)
	}
	return time.Since(began)
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// waitReady waits until cc reports Ready: gRPC installs a new picker
// before it reports the state, so a call can succeed while the state still
// reads Connecting, and WaitForStateChange(Ready) would return at once.
func waitReady(t *testing.T, cc *grpc.ClientConn) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		return cc.GetState() == connectivity.Ready
	}, "the connection reports ready")
}

func getRingWithin(cc *grpc.ClientConn, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := kvpb.NewKVClient(cc).GetRing(ctx, &kvpb.GetRingRequest{})
	return err
}

func closedFor(c *tcluster, reason string) float64 {
	return promtest.ToFloat64(c.srv("s1").metrics.connsClosed.WithLabelValues(reason))
}

// TestConnectionDeadlines: a connection that sends nothing is closed at the
// handshake deadline, one that handshakes but makes no call at the
// first-request deadline; a call admits a connection for good.
func TestConnectionDeadlines(t *testing.T) {
	const handshake, first = 500 * time.Millisecond, 1500 * time.Millisecond
	c, addr := newGateCluster(t, func(cfg *config.KVServer) {
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout = handshake, first
	})

	t.Run("silent", func(t *testing.T) {
		took := waitClosed(t, silentConn(t, addr), 10*time.Second)
		require.GreaterOrEqual(t, took, handshake*3/4)
		require.EqualValues(t, 1, closedFor(c, closeHandshake))
	})
	t.Run("handshake but no call", func(t *testing.T) {
		cc := dialGRPC(t, addr)
		cc.Connect()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for st := cc.GetState(); st != connectivity.Ready; st = cc.GetState() {
			require.True(t, cc.WaitForStateChange(ctx, st), "connection not ready")
		}
		began := time.Now()
		require.True(t, cc.WaitForStateChange(ctx, connectivity.Ready), "the server did not close the connection")
		require.Less(t, time.Since(began), 5*time.Second)
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			return closedFor(c, closeFirstRequest) == 1
		}, "counted as first_request_timeout")
		require.EqualValues(t, 1, closedFor(c, closeHandshake), "the handshake was done in time")
	})
	t.Run("a call admits the connection", func(t *testing.T) {
		cc := dialGRPC(t, addr)
		require.NoError(t, getRingWithin(cc, 5*time.Second))
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			pending, admitted := c.srv("s1").gate.counts() // the earlier connections close asynchronously
			return pending == 0 && admitted == 1
		}, "the connection is admitted")
		waitReady(t, cc)
		ctx, cancel := context.WithTimeout(context.Background(), first+handshake)
		defer cancel()
		require.False(t, cc.WaitForStateChange(ctx, connectivity.Ready), "an admitted connection outlives the deadlines")
	})
}

// TestIdleConnectionClosed: an admitted connection without a call in
// progress for idle-timeout is closed (gRPC's GOAWAY) and counted.
func TestIdleConnectionClosed(t *testing.T) {
	c, addr := newGateCluster(t, func(cfg *config.KVServer) { cfg.IdleTimeout = time.Second })
	cc := dialGRPC(t, addr)
	require.NoError(t, getRingWithin(cc, 5*time.Second))
	waitReady(t, cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.True(t, cc.WaitForStateChange(ctx, connectivity.Ready), "the idle connection was not closed")
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		return closedFor(c, closeIdle) == 1
	}, "counted as idle")
	require.NoError(t, getRingWithin(cc, 5*time.Second), "the client reconnects")
}

// TestSilentConnectionsDoNotLockOut is the attack of issue 14: more silent
// connections than max-connections and max-pending-connections, reopened
// as fast as the server closes them, and a client is still served at once.
func TestSilentConnectionsDoNotLockOut(t *testing.T) {
	c, addr := newGateCluster(t, func(cfg *config.KVServer) {
		cfg.MaxConnections, cfg.MaxPendingConnections = 5, 8
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout = 30*time.Second, 30*time.Second
	})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		opened atomic.Int64
	)
	defer func() { cancel(); wg.Wait() }()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			testutil.HoldSilent(ctx, addr, &opened)
		}()
	}
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool {
		return closedFor(c, closeEvicted) >= 20
	}, "the silent connections evict each other")

	began := time.Now()
	require.NoError(t, getRingWithin(dialGRPC(t, addr), 2*time.Second))
	t.Logf("served in %v; %v silent connections evicted", time.Since(began), closedFor(c, closeEvicted))
	pending, admitted := c.srv("s1").gate.counts()
	require.LessOrEqual(t, pending, 8)
	require.Equal(t, 1, admitted)
}

// TestStopClosesPendingConnections: Stop does not wait for the handshake
// deadline of a silent connection (gRPC's Stop waits for handshakes).
func TestStopClosesPendingConnections(t *testing.T) {
	c, addr := newGateCluster(t, func(cfg *config.KVServer) {
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout = time.Minute, time.Minute
	})
	conn := silentConn(t, addr)
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		pending, _ := c.srv("s1").gate.counts()
		return pending == 1
	}, "the connection is accepted")
	began := time.Now()
	c.stopNode("s1")
	require.Less(t, time.Since(began), 10*time.Second)
	waitClosed(t, conn, 5*time.Second)
}

// TestTLSConnectionDeadlines: with TLS, the handshake deadline covers the
// TLS handshake and the HTTP/2 preface after it.
func TestTLSConnectionDeadlines(t *testing.T) {
	const handshake, first = 500 * time.Millisecond, 1500 * time.Millisecond
	c, dir := newTLSCluster(t, 1, func(cfg *config.KVServer) {
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout = handshake, first
	})
	addr := c.node("s1").addr
	t.Run("silent", func(t *testing.T) {
		waitClosed(t, silentConn(t, addr), 10*time.Second)
		require.EqualValues(t, 1, closedFor(c, closeHandshake))
	})
	t.Run("TLS done, no HTTP/2 preface", func(t *testing.T) {
		cfg, err := tlsutil.ClientConfig(tlsutil.DirFiles(dir, tlsutil.ClientName))
		require.NoError(t, err)
		cfg.NextProtos = []string{"h2"} // gRPC refuses a TLS client without it at once
		conn, err := tls.Dial("tcp", addr, cfg)
		require.NoError(t, err)
		defer conn.Close()
		took := waitClosed(t, conn, 10*time.Second)
		require.GreaterOrEqual(t, took, handshake/2)
		require.EqualValues(t, 2, closedFor(c, closeHandshake))
	})
	t.Run("a client is served", func(t *testing.T) {
		cc, err := grpc.NewClient(addr, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ClientName)))
		require.NoError(t, err)
		defer cc.Close()
		require.NoError(t, getRingWithin(cc, 5*time.Second))
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			pending, admitted := c.srv("s1").gate.counts()
			return pending == 0 && admitted == 1
		}, "the gate knows the TLS connection by its addresses and admits it")
		require.Zero(t, closedFor(c, closeFirstRequest))
	})
}

func TestVictim(t *testing.T) {
	now := time.Now()
	type pc struct {
		age  time.Duration
		sent bool
	}
	tests := []struct {
		name     string
		pending  []pc // oldest first
		want     int  // index of the victim; -1 for none
		wantWait time.Duration
	}{
		{name: "oldest silent past grace", pending: []pc{{age: time.Second, sent: true}, {age: 500 * time.Millisecond}, {age: 300 * time.Millisecond}}, want: 1},
		{name: "all sent: the oldest", pending: []pc{{age: time.Second, sent: true}, {age: 500 * time.Millisecond, sent: true}}, want: 0},
		{name: "a young silent one is safe", pending: []pc{{age: time.Second, sent: true}, {age: 10 * time.Millisecond}}, want: 0},
		{name: "all young: wait for the oldest", pending: []pc{{age: 60 * time.Millisecond}, {age: 10 * time.Millisecond}}, want: -1, wantWait: 40 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &connGate{pending: list.New()}
			var conns []*gatedConn
			for _, p := range tt.pending {
				c := &gatedConn{accepted: now.Add(-p.age)}
				c.sent.Store(p.sent)
				c.elem = g.pending.PushBack(c)
				conns = append(conns, c)
			}
			victim, wait := g.victimLocked(now)
			if tt.want < 0 {
				require.Nil(t, victim)
				require.Equal(t, tt.wantWait, wait)
				return
			}
			require.Same(t, conns[tt.want], victim)
			require.Zero(t, wait)
		})
	}
}
