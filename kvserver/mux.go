package kvserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// replMux splits the service port's connections between gRPC and the
// replication transport (replnet.go), so that peers need no port of their
// own. With TLS it does the handshake itself and routes by ALPN: gRPC
// clients negotiate h2, peers replALPN; gRPC then takes the connection
// with its handshake done (tlsutil.Handshaken). Without TLS a peer's
// connection starts with replPreface, which no HTTP/2 connection does.
//
// A connection is routed in a goroutine of its own, so one that sends
// nothing holds up no other; the gate (conns.go) closes it at its
// handshake deadline as before.
type replMux struct {
	s    *Server
	gate *connGate
	tls  *tls.Config // nil: plaintext
	conn chan net.Conn
	done chan struct{}
	once sync.Once
}

func newReplMux(s *Server, gate *connGate, cfg *tls.Config) *replMux {
	m := &replMux{s: s, gate: gate, tls: cfg, conn: make(chan net.Conn), done: make(chan struct{})}
	if cfg != nil {
		m.tls = cfg.Clone()
		m.tls.NextProtos = []string{"h2", replALPN}
		if s.grpcReplOnly {
			m.tls.NextProtos = []string{"h2"}
		}
	}
	return m
}

// run accepts from the gate until it is closed. Other accept errors (out
// of file descriptors) are retried after a pause, as gRPC's Serve did when
// it accepted from the gate itself.
func (m *replMux) run() {
	defer m.Close()
	var pause time.Duration
	for {
		c, err := m.gate.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			m.s.lg.Warn("accept failed; retrying", zap.Duration("in", pause), zap.Error(err))
			select {
			case <-time.After(pause):
				continue
			case <-m.done:
				return
			}
		}
		pause = 0
		if !m.s.goAttach(func() { m.route(c) }) {
			_ = c.Close()
			return
		}
	}
}

// route hands c to gRPC or to the replication transport.
func (m *replMux) route(c net.Conn) {
	gc, _ := c.(*gatedConn)
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			_ = c.Close() // as gRPC's handshake failing would
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == replALPN {
			m.s.serveRepl(tc, gc, false)
			return
		}
		m.toGRPC(tc)
		return
	}
	br := bufio.NewReaderSize(c, len(replPreface))
	first, err := br.Peek(1)
	if err != nil {
		_ = c.Close()
		return
	}
	if first[0] != replPreface[0] || m.s.grpcReplOnly {
		m.toGRPC(&peekedConn{Conn: c, r: br})
		return
	}
	got := make([]byte, len(replPreface)) // as long as replPrefaceV1
	if _, err := io.ReadFull(br, got); err != nil || string(got) != replPreface && string(got) != replPrefaceV1 {
		m.s.lg.Debug("refused a connection: neither gRPC nor a peer", zap.Stringer("remote", c.RemoteAddr()))
		_ = c.Close()
		return
	}
	m.s.serveRepl(&peekedConn{Conn: c, r: br}, gc, string(got) == replPreface)
}

func (m *replMux) toGRPC(c net.Conn) {
	select {
	case m.conn <- c:
	case <-m.done:
		_ = c.Close()
	}
}

// Accept returns the next connection for gRPC.
func (m *replMux) Accept() (net.Conn, error) {
	select {
	case c := <-m.conn:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes the gate, which ends run.
func (m *replMux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.gate.Close()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (m *replMux) Addr() net.Addr { return m.gate.Addr() }

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
