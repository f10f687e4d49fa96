package kvserver

import (
	"container/list"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/stats"
)

// Reasons the gate closes a connection: labels of
// ecskv_connections_closed_total.
const (
	closeHandshake    = "handshake_timeout"     // TLS/HTTP2 handshake not done in handshake-timeout
	closeFirstRequest = "first_request_timeout" // no call in first-request-timeout
	closeIdle         = "idle"                  // no call in progress for idle-timeout (gRPC's GOAWAY)
	closeEvicted      = "evicted"               // the oldest pending one, for a new connection at max-pending-connections
)

var closeReasons = []string{closeHandshake, closeFirstRequest, closeIdle, closeEvicted}

// gateLimits are the connection bounds of config.KVServer.
type gateLimits struct {
	maxAdmitted, maxPending int           // 0 = no bound
	handshake, firstRequest time.Duration // from accept
	idle                    time.Duration // 0 = never
}

// connGate is the listener the gRPC server accepts from. It follows every
// connection from accept to close, so that connections that never make a
// call cannot hold the slots of those that do:
//
//   - A connection is pending from accept until its first call. Pending
//     connections do not count against maxAdmitted; at most maxPending are
//     open, and a new one at that bound evicts the oldest pending one that
//     has sent nothing (else the oldest), so a flood of silent connections
//     cannot keep a client out. A pending connection is closed when its
//     handshake is not done at accept+handshake, or it has made no call at
//     accept+firstRequest.
//   - Its first call admits it while fewer than maxAdmitted are admitted;
//     otherwise the call fails with ResourceExhausted (the connection stays
//     pending, and a later call may get in).
//   - gRPC closes admitted connections idle for the idle timeout
//     (keepalive MaxConnectionIdle); the gate only counts them.
//
// gRPC tells the gate that a handshake is done through TagConn (the gate
// is the server's stats.Handler) and of calls through the interceptors.
type connGate struct {
	net.Listener
	lim     gateLimits
	closed  *prometheus.CounterVec
	refused prometheus.Counter

	mu       sync.Mutex // guards the fields below and the pending state of every gatedConn
	pending  *list.List // of *gatedConn, in accept order
	admitted int
	byAddr   map[string]*gatedConn // connKey -> open connection
}

// gatedConn is one accepted connection.
type gatedConn struct {
	net.Conn
	g        *connGate
	key      string
	accepted time.Time
	sent     atomic.Bool  // the peer has sent a byte
	calls    atomic.Int32 // calls in progress
	lastCall atomic.Int64 // UnixNano when calls last dropped to zero
	once     sync.Once

	// Guarded by g.mu.
	timer     *time.Timer   // the handshake, then the first-request deadline
	elem      *list.Element // in g.pending; nil once admitted or evicted
	handshook bool
	admitted  bool
	reason    string // why the gate closes it; "" when it is not the gate
}

func newConnGate(lis net.Listener, lim gateLimits, m *metrics) *connGate {
	return &connGate{
		Listener: lis, lim: lim, closed: m.connsClosed, refused: m.connsRefused,
		pending: list.New(), byAddr: map[string]*gatedConn{},
	}
}

func connKey(local, remote net.Addr) string { return local.String() + "|" + remote.String() }

// Accept returns the next connection, pending, with its handshake deadline
// set; at maxPending it first evicts one.
func (g *connGate) Accept() (net.Conn, error) {
	conn, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &gatedConn{Conn: conn, g: g, key: connKey(conn.LocalAddr(), conn.RemoteAddr()), accepted: time.Now()}
	g.mu.Lock()
	var victim *gatedConn
	if g.lim.maxPending > 0 && g.pending.Len() >= g.lim.maxPending {
		victim = g.evictLocked()
	}
	c.elem = g.pending.PushBack(c)
	g.byAddr[c.key] = c
	// The callback only closes the connection: Stop need not wait for it.
	c.timer = time.AfterFunc(g.lim.handshake, c.expire)
	g.mu.Unlock()
	if victim != nil {
		_ = victim.Close()
	}
	return c, nil
}

// evictLocked takes the oldest pending connection that has sent nothing,
// else the oldest, out of the pending list and marks it evicted.
func (g *connGate) evictLocked() *gatedConn {
	e := g.pending.Front()
	for x := e; x != nil; x = x.Next() {
		if !x.Value.(*gatedConn).sent.Load() {
			e = x
			break
		}
	}
	c := g.pending.Remove(e).(*gatedConn)
	c.elem, c.reason = nil, closeEvicted
	return c
}

// Close stops accepting and closes the pending connections: gRPC's Stop
// waits for connections in their handshake.
func (g *connGate) Close() error {
	err := g.Listener.Close()
	g.mu.Lock()
	var open []*gatedConn
	for e := g.pending.Front(); e != nil; e = e.Next() {
		open = append(open, e.Value.(*gatedConn))
	}
	g.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
	return err
}

// counts returns the pending and admitted connections.
func (g *connGate) counts() (pending, admitted int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending.Len(), g.admitted
}

// expire runs at a pending connection's deadline: past the handshake
// deadline it closes a connection still handshaking, past the first-request
// deadline one without a call.
func (c *gatedConn) expire() {
	g := c.g
	g.mu.Lock()
	if c.admitted || c.reason != "" {
		g.mu.Unlock()
		return
	}
	c.reason = closeHandshake
	if c.handshook {
		if left := time.Until(c.accepted.Add(g.lim.firstRequest)); left > 0 {
			c.reason = ""
			c.timer.Reset(left)
			g.mu.Unlock()
			return
		}
		c.reason = closeFirstRequest
	}
	g.mu.Unlock()
	_ = c.Close()
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.sent.Load() {
		c.sent.Store(true)
	}
	return n, err
}

// Close closes the connection and, the first time, forgets it and counts
// why the gate closed it.
func (c *gatedConn) Close() error {
	c.once.Do(c.g.forget(c))
	return c.Conn.Close()
}

func (g *connGate) forget(c *gatedConn) func() {
	return func() {
		g.mu.Lock()
		c.timer.Stop()
		delete(g.byAddr, c.key)
		if c.elem != nil {
			g.pending.Remove(c.elem)
			c.elem = nil
		}
		if c.admitted {
			g.admitted--
		}
		reason := c.reason
		g.mu.Unlock()
		if reason == "" && c.admitted && g.lim.idle > 0 && c.calls.Load() == 0 &&
			time.Since(time.Unix(0, c.lastCall.Load())) >= g.lim.idle {
			reason = closeIdle // gRPC sent GOAWAY at the idle timeout; the client closed
		}
		if reason != "" {
			g.closed.WithLabelValues(reason).Inc()
		}
	}
}

type gatedConnKey struct{}

// begin runs before each call on a gated connection: the first admits the
// connection, or refuses the call at maxAdmitted. end runs after the call.
func (g *connGate) begin(ctx context.Context) (end func(), err error) {
	c, _ := ctx.Value(gatedConnKey{}).(*gatedConn)
	if c == nil {
		return func() {}, nil
	}
	if err := g.admit(c); err != nil {
		return nil, err
	}
	c.calls.Add(1)
	return c.endCall, nil
}

func (c *gatedConn) endCall() {
	if c.calls.Add(-1) == 0 {
		c.lastCall.Store(time.Now().UnixNano())
	}
}

func (g *connGate) admit(c *gatedConn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case c.admitted:
		return nil
	case g.lim.maxAdmitted > 0 && g.admitted >= g.lim.maxAdmitted:
		g.refused.Inc()
		return fmt.Errorf("%w: max-connections (ECSKV_MAX_CONNECTIONS) is %d", ErrTooManyConnections, g.lim.maxAdmitted)
	}
	c.admitted = true
	g.admitted++
	c.timer.Stop()
	if c.elem != nil {
		g.pending.Remove(c.elem)
		c.elem = nil
	}
	return nil
}

// TagConn marks the connection's handshake done, moves its deadline to
// the first call's, and puts it in the connection's context, which every
// call's context derives from.
func (g *connGate) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.byAddr[connKey(info.LocalAddr, info.RemoteAddr)]
	if c == nil {
		return ctx
	}
	if !c.admitted && c.reason == "" {
		c.handshook = true
		c.timer.Reset(time.Until(c.accepted.Add(g.lim.firstRequest)))
	}
	return context.WithValue(ctx, gatedConnKey{}, c)
}

// HandleConn, TagRPC and HandleRPC complete stats.Handler; the gate needs
// only TagConn.
func (g *connGate) HandleConn(context.Context, stats.ConnStats) {}

func (g *connGate) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (g *connGate) HandleRPC(context.Context, stats.RPCStats) {}
