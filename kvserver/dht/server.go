package dht

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ecskv/ecskv/kvserver/frontdoor"
	"go.uber.org/zap"
)

// Config configures the listener.
type Config struct {
	Listen string // host:port
	// MaxConnections bounds the open connections; one more is closed at
	// once. 0 = no bound.
	MaxConnections int
	// MaxInflight bounds the requests of one connection being served or
	// answered; past it the connection is not read until one is done.
	MaxInflight int
	// IdleTimeout closes a connection that sends no message, or does not
	// read an answer, for this long. 0 = never.
	IdleTimeout time.Duration
	// RequestTimeout bounds one request in the cluster, retries included.
	RequestTimeout time.Duration
	// MaxTTL is the TTL of a PUT that asks for 0: the longest the cluster
	// allows.
	MaxTTL time.Duration
}

// Server serves the DHT API on one listener. Create it with New, then
// Start; Stop closes every connection.
type Server struct {
	cfg     Config
	store   Store
	lg      *zap.Logger
	metrics *Metrics

	lis    net.Listener
	ctx    context.Context // cancelled by Stop: ends the requests in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines
	slots  chan struct{}  // MaxConnections tokens; nil = no bound
	stop   sync.Once

	mu    sync.Mutex // guards conns and shut
	conns map[net.Conn]struct{}
	shut  bool
}

// New returns a server of store; m may be nil (no metrics).
func New(cfg Config, store Store, lg *zap.Logger, m *Metrics) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, store: store, lg: lg, metrics: m, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	if s.cfg.MaxInflight < 1 {
		s.cfg.MaxInflight = 1
	}
	if cfg.MaxConnections > 0 {
		s.slots = make(chan struct{}, cfg.MaxConnections)
	}
	return s
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("dht: listen %s: %w", s.cfg.Listen, err)
	}
	s.lis = lis
	s.wg.Add(1)
	go s.acceptLoop()
	s.lg.Info("dht api listening", zap.String("addr", lis.Addr().String()))
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Stop closes the listener and every connection, ends the requests in
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
			s.lg.Debug("dht connection refused: at max connections", zap.Stringer("from", c.RemoteAddr()))
			s.metrics.closed(closeMaxConns)
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
	s.metrics.open(1)
	return true
}

func (s *Server) release(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.open(-1)
	if s.slots != nil {
		<-s.slots
	}
}

// pending is one request of a connection, in request order.
type pending struct {
	done   chan struct{} // closed when the request is served
	answer []byte        // encoded answer; nil for a PUT
}

// serveConn reads c's requests until it ends or sends a malformed one,
// serving up to MaxInflight at once, and answers them in order.
func (s *Server) serveConn(c net.Conn) {
	// slots bounds the requests in flight: the reader takes one before it
	// starts a request, the writer gives it back once the request is
	// answered. So queue, which holds them in order, never fills.
	slots := make(chan struct{}, s.cfg.MaxInflight)
	queue := make(chan *pending, s.cfg.MaxInflight)
	var wrote sync.WaitGroup
	wrote.Add(1)
	go func() {
		defer wrote.Done()
		s.writeLoop(c, queue, slots)
	}()
	s.readLoop(c, queue, slots)
	close(queue)
	wrote.Wait()
}

// readLoop reads and starts requests.
func (s *Server) readLoop(c net.Conn, queue chan<- *pending, slots chan<- struct{}) {
	r := bufio.NewReader(c)
	last := map[Key]chan struct{}{} // the latest request of each key in flight
	var requests sync.WaitGroup
	defer requests.Wait()
	for {
		if s.cfg.IdleTimeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		m, err := ReadMessage(r)
		if err == nil {
			err = s.check(m)
		}
		if err != nil {
			s.readFailed(c, err)
			return
		}
		select {
		case slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		p := &pending{done: make(chan struct{})}
		queue <- p
		prev := last[m.Key]
		last[m.Key] = p.done
		pruneDone(last, s.cfg.MaxInflight)
		requests.Add(1)
		go func() {
			defer requests.Done()
			defer close(p.done)
			if prev != nil {
				<-prev // per key, requests apply in the order they came
			}
			p.answer = s.serve(m)
		}()
	}
}

// pruneDone drops the keys whose latest request is done, once the map has
// grown past twice the requests that can be in flight.
func pruneDone(last map[Key]chan struct{}, inflight int) {
	if len(last) <= 2*inflight {
		return
	}
	for k, done := range last {
		select {
		case <-done:
			delete(last, k)
		default:
		}
	}
}

// check refuses a well-formed message the server does not take.
func (s *Server) check(m Message) error {
	switch m.Type {
	case TypeGet:
		return nil
	case TypePut:
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
		defer cancel()
		if limit := min(s.store.MaxValueBytes(ctx), MaxValueSize); len(m.Value) > limit {
			return fmt.Errorf("%w: %d bytes, the cluster's limit is %d", ErrValueTooLarge, len(m.Value), limit)
		}
		return nil
	}
	return fmt.Errorf("%w: type %d", ErrNotRequest, m.Type)
}

// readFailed logs why a connection's reading ended, when that is worth a
// line: a malformed message or an idle client, not a clean close.
func (s *Server) readFailed(c net.Conn, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrNotRequest), errors.Is(err, ErrValueTooLarge):
		s.lg.Warn("dht closing connection: malformed message", zap.Stringer("from", c.RemoteAddr()), zap.Error(err))
		s.metrics.closed(closeMalformed)
	case errors.As(err, &ne) && ne.Timeout():
		s.lg.Debug("dht closing idle connection", zap.Stringer("from", c.RemoteAddr()))
		s.metrics.closed(closeIdle)
	default:
		s.lg.Debug("dht connection ended", zap.Stringer("from", c.RemoteAddr()), zap.Error(err))
	}
}

// writeLoop writes the answers in request order. Answers ready together
// share a write: it flushes only before it would wait. After a failed
// write it closes the connection (the reader stops too) and only drains
// the queue, so the reader never blocks on it.
func (s *Server) writeLoop(c net.Conn, queue <-chan *pending, slots <-chan struct{}) {
	w := bufio.NewWriter(c)
	var err error
	failed := false
	flush := func() {
		if err == nil && w.Buffered() > 0 {
			if s.cfg.IdleTimeout > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
			}
			err = w.Flush()
		}
	}
	for p := range queue {
		select {
		case <-p.done:
		default:
			flush()
			<-p.done
		}
		if err == nil && p.answer != nil {
			if s.cfg.IdleTimeout > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
			}
			_, err = w.Write(p.answer)
		}
		if len(queue) == 0 {
			flush()
		}
		<-slots
		if err != nil && !failed {
			failed = true
			s.lg.Debug("dht write", zap.Stringer("to", c.RemoteAddr()), zap.Error(err))
			_ = c.Close()
		}
	}
	flush()
}

// serve runs one request against the store and returns its encoded
// answer: SUCCESS or FAILURE for a GET, nil for a PUT.
func (s *Server) serve(m Message) []byte {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	if m.Type == TypePut {
		ttl := time.Duration(m.TTL) * time.Second
		if ttl == 0 {
			ttl = s.cfg.MaxTTL
		}
		err := s.store.Put(ctx, m.Key, m.Value, ttl)
		if err != nil {
			// PUT has no answer: the log and the metric are all there is.
			s.lg.Warn("dht put failed", zap.Error(err))
		}
		s.metrics.done(opPut, resultOf(err, true), start)
		return nil
	}
	val, found, err := s.store.Get(ctx, m.Key)
	if err != nil {
		s.lg.Warn("dht get failed", zap.Error(err))
	}
	s.metrics.done(opGet, resultOf(err, found), start)
	ans := Failure(m.Key)
	if err == nil && found && len(val) <= MaxValueSize {
		ans = Success(m.Key, val)
	}
	b, _ := Encode(ans) // a known type within MaxMessageSize cannot fail
	return b
}
