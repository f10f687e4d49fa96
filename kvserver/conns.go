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
	closeEvicted      = "evicted"               // at max-pending-connections, to take a new connection (waitRoom)
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
//     connections do not count against maxAdmitted. A pending connection
//     is closed when its handshake is not done at accept+handshake, or it
//     has made no call at accept+firstRequest.
//   - At most maxPending are open. At that bound the gate takes no more
//     (new connections wait in the kernel's backlog, first come first
//     served) until a pending one leaves or one is older than evictGrace:
//     then it closes the oldest of those that has sent nothing (else the
//     oldest) and takes the next. So a flood of silent connections,
//     reopened as fast as they are closed, cannot keep a client out: it
//     waits behind at most the flood's connections in the backlog, which
//     drain at maxPending per evictGrace, and once taken it has sent its
//     first bytes long before it could be evicted.
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

	left    chan struct{} // capacity 1: a pending connection was admitted or closed
	closing chan struct{} // closed by Close: Accept stops waiting for room

	mu       sync.Mutex // guards the fields below and the pending state of every gatedConn
	pending  *list.List // of *gatedConn, in accept order
	admitted int
	byAddr   map[string]*gatedConn // connKey -> open connection
	shut     bool                  // Close has run
}

// evictGrace is how long a new connection is safe from eviction: a client
// sends its first bytes (TLS ClientHello, HTTP/2 preface) at once, so only
// silent connections are still without any when it ends.
const evictGrace = 100 * time.Millisecond

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
		left: make(chan struct{}, 1), closing: make(chan struct{}),
	}
}

func connKey(local, remote net.Addr) string { return local.String() + "|" + remote.String() }

// Accept returns the next connection, pending, with its handshake deadline
// set; at maxPending it first makes room (waitRoom).
func (g *connGate) Accept() (net.Conn, error) {
	conn, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	accepted := time.Now()
	if err := g.waitRoom(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	c := &gatedConn{Conn: withRawIO(conn), g: g, key: connKey(conn.LocalAddr(), conn.RemoteAddr()), accepted: accepted}
	g.mu.Lock()
	c.elem = g.pending.PushBack(c)
	g.byAddr[c.key] = c
	// The callback only closes the connection: Stop need not wait for it.
	c.timer = time.AfterFunc(g.lim.handshake, c.expire)
	g.mu.Unlock()
	return c, nil
}

// waitRoom returns once fewer than maxPending connections are pending,
// evicting one when it can (victimLocked) and otherwise waiting for one to
// leave or to age past evictGrace.
func (g *connGate) waitRoom() error {
	for {
		g.mu.Lock()
		if g.shut {
			g.mu.Unlock()
			return net.ErrClosed
		}
		if g.lim.maxPending == 0 || g.pending.Len() < g.lim.maxPending {
			g.mu.Unlock()
			return nil
		}
		victim, wait := g.victimLocked(time.Now())
		if victim != nil {
			g.pending.Remove(victim.elem)
			victim.elem, victim.reason = nil, closeEvicted
		}
		g.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-g.left:
		case <-t.C:
		case <-g.closing:
		}
		t.Stop()
	}
}

// victimLocked picks the pending connection to evict: of those older than
// evictGrace the oldest that has sent nothing, else the oldest. With none
// that old it returns how long until the oldest is.
func (g *connGate) victimLocked(now time.Time) (victim *gatedConn, wait time.Duration) {
	for e := g.pending.Front(); e != nil; e = e.Next() {
		c := e.Value.(*gatedConn)
		if age := now.Sub(c.accepted); age < evictGrace {
			if victim == nil {
				wait = evictGrace - age
			}
			return victim, wait // the rest are younger still
		}
		if !c.sent.Load() {
			return c, 0
		}
		if victim == nil {
			victim = c
		}
	}
	return victim, 0
}

// Close stops accepting and closes the pending connections: gRPC's Stop
// waits for connections in their handshake.
func (g *connGate) Close() error {
	err := g.Listener.Close()
	g.mu.Lock()
	if !g.shut {
		g.shut = true
		close(g.closing)
	}
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
			signal(g.left)
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
	return g.beginConn(c)
}

// beginConn is begin for a connection the gate knows: a gRPC call's, or a
// replication connection for as long as it is open.
func (g *connGate) beginConn(c *gatedConn) (end func(), err error) {
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
		signal(g.left)
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
