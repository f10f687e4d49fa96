package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/kvserver/frontdoor"
	"go.uber.org/zap"
)

// Config configures the listener.
type Config struct {
	Listen string // host:port
	// ServerID is the kvserver's id: CLUSTER MYID and INFO derive from it.
	ServerID string
	// MaxConnections bounds the open connections; one more is closed at
	// once. 0 = no bound.
	MaxConnections int
	// IdleTimeout closes a connection that sends no command, or does not
	// read an answer, for this long. 0 = never.
	IdleTimeout time.Duration
	// RequestTimeout bounds one command in the cluster, retries included.
	RequestTimeout time.Duration
	// MaxBulkBytes bounds one argument (lowered to the cluster's largest
	// key or value once known), MaxRequestBytes all the arguments of one
	// command; a larger one is a protocol error that closes the
	// connection, as Redis does past proto-max-bulk-len.
	MaxBulkBytes, MaxRequestBytes int
}

// Server serves the Redis protocol on one listener. Create it with New,
// then Start; Stop closes every connection.
type Server struct {
	cfg     Config
	cluster Cluster
	lg      *zap.Logger
	metrics *Metrics
	started time.Time

	lis    net.Listener
	ctx    context.Context // cancelled by Stop: ends the commands in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutine
	slots  chan struct{}  // MaxConnections tokens; nil = no bound
	stop   sync.Once
	ids    atomic.Int64 // CLIENT ID of the latest connection
	open   atomic.Int64 // connections open

	mu    sync.Mutex // guards conns and shut
	conns map[net.Conn]struct{}
	shut  bool
}

// New returns a server of cluster; m may be nil (no metrics).
func New(cfg Config, cluster Cluster, lg *zap.Logger, m *Metrics) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, cluster: cluster, lg: lg, metrics: m, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, started: time.Now()}
	if cfg.MaxConnections > 0 {
		s.slots = make(chan struct{}, cfg.MaxConnections)
	}
	return s
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("resp: listen %s: %w", s.cfg.Listen, err)
	}
	s.lis = lis
	s.wg.Add(1)
	go s.acceptLoop()
	s.lg.Info("redis protocol listening", zap.String("addr", lis.Addr().String()))
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Stop closes the listener and every connection, ends the commands in
// flight and waits for every goroutine. It is idempotent.
func (s *Server) Stop() {
	s.stop.Do(func() {
		s.cancel()
		if s.lis != nil {
			_ = s.lis.Close()
		}
		s.mu.Lock()
		s.shut = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *Server) connCount() int { return int(s.open.Load()) }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	frontdoor.AcceptLoop(s.ctx, s.lis, s.lg, func(c net.Conn) {
		if !s.admit(c) {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(c)
			s.serveConn(c)
		}()
	})
}

// admit takes a connection slot for c, or closes c when none is free or
// the server is stopping.
func (s *Server) admit(c net.Conn) bool {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		default:
			s.lg.Debug("resp connection refused: at max connections", zap.Stringer("from", c.RemoteAddr()))
			s.metrics.closed(closeMaxConns)
			// Redis's words, so the client shows why.
			_, _ = c.Write([]byte("-ERR max number of clients reached\r\n"))
			_ = c.Close()
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		_ = c.Close()
		if s.slots != nil {
			<-s.slots
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.open.Add(1)
	s.metrics.open(1)
	return true
}

func (s *Server) release(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.open.Add(-1)
	s.metrics.open(-1)
	if s.slots != nil {
		<-s.slots
	}
}

// limits are the request bounds of sess: Redis's small ones before AUTH
// on a cluster with users, the configured ones otherwise.
func (s *Server) limits(sess *session) Limits {
	if sess.keyspace() == nil {
		return Limits{MaxArgs: unauthArgs, MaxBulkBytes: unauthBulkBytes, MaxRequestBytes: unauthArgs * unauthBulkBytes}
	}
	bulk := s.cfg.MaxBulkBytes
	if n := s.cluster.MaxArgBytes(); n > 0 {
		bulk = min(bulk, n)
	}
	return Limits{MaxArgs: MaxArgs, MaxBulkBytes: bulk, MaxRequestBytes: s.cfg.MaxRequestBytes}
}

// maxPending is how much answer a pipeline may pile up before it is
// written, though more commands are already buffered.
const maxPending = 64 << 10

// serveConn reads and runs c's commands in order until it ends, breaks
// the protocol or sends QUIT. Answers are written when no further command
// is buffered, so a pipeline's answers share writes.
func (s *Server) serveConn(c net.Conn) {
	sess := &session{srv: s, id: s.ids.Add(1), local: c.LocalAddr().String(), remote: c.RemoteAddr().String(),
		out: replies{proto: resp2}}
	defer sess.logout()
	r := NewReader(c, s.limits(sess))
	for {
		if s.cfg.IdleTimeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		r.SetLimits(s.limits(sess))
		args, err := r.ReadCommand()
		if err != nil {
			s.readFailed(c, sess, err)
			return
		}
		if args != nil {
			start := time.Now()
			name, result := sess.exec(args)
			s.metrics.done(name, result, start)
		}
		if sess.quit || r.Buffered() == 0 || len(sess.out.b) >= maxPending {
			if err := s.flush(c, sess); err != nil {
				s.lg.Debug("resp write", zap.Stringer("to", c.RemoteAddr()), zap.Error(err))
				return
			}
		}
		if sess.quit {
			s.metrics.closed(closeQuit)
			return
		}
	}
}

// flush writes the answers sess has buffered.
func (s *Server) flush(c net.Conn, sess *session) error {
	if len(sess.out.b) == 0 {
		return nil
	}
	if s.cfg.IdleTimeout > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
	}
	_, err := c.Write(sess.out.b)
	if cap(sess.out.b) > 1<<20 {
		sess.out.b = nil // a huge answer's buffer is not kept
	} else {
		sess.out.b = sess.out.b[:0]
	}
	return err
}

// readFailed answers a protocol error before closing, and logs why a
// connection's reading ended when that is worth a line.
func (s *Server) readFailed(c net.Conn, sess *session, err error) {
	var pe *ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		s.lg.Info("resp closing connection: protocol error", zap.Stringer("from", c.RemoteAddr()), zap.Error(err))
		s.metrics.closed(closeProtocol)
		sess.out.err(pe.Error())
		_ = s.flush(c, sess)
	case errors.As(err, &ne) && ne.Timeout():
		s.lg.Debug("resp closing idle connection", zap.Stringer("from", c.RemoteAddr()))
		s.metrics.closed(closeIdle)
		_ = s.flush(c, sess)
	default:
		s.lg.Debug("resp connection ended", zap.Stringer("from", c.RemoteAddr()), zap.Error(err))
		_ = s.flush(c, sess)
	}
}
