package kvserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/tlsutil"
	"go.uber.org/zap"
)

// The replication transport carries chain messages from one server to
// another: a connection of their own on the service port (replMux routes
// it), one way, each frame a 4-byte big-endian length and a ReplBatch.
// It replaced a gRPC stream: a hop then took four goroutine handoffs
// (the sender, gRPC's writer, gRPC's reader, the stream's receiver) and
// HTTP/2 framing and flow control; now the sender writes and the reader
// steps, two. Like the stream it is fire-and-forget: the chain protocol
// resends what a broken connection lost.
//
// A server that does not speak it (an older version, during a rolling
// upgrade) is sent to over the gRPC Replicate stream instead, which every
// server still serves: with TLS such a server refuses replALPN in the
// handshake; without, it does not answer replPreface with replAck.
const (
	replALPN    = "ecskv-repl/1"         // with TLS
	replPreface = "ECSKV-REPL/2\r\n\r\n" // without: never the start of HTTP/2
	replAck     = "ECSKV-REPL/2 OK\r\n"  // the answer to replPreface
	// replPrefaceV1 is the preface of servers that expect no answer;
	// still read, so that they may send to this one.
	replPrefaceV1 = "ECSKV-REPL/1\r\n\r\n"
	replHeader    = 4
	// replWriteTimeout bounds a write to a peer that stopped reading (or
	// a network that dropped it): the connection is closed and redialled,
	// and the protocol resends.
	replWriteTimeout = 10 * time.Second
	replDialTimeout  = 5 * time.Second
	replReadBuffer   = 64 << 10
)

// replConns are the replication connections this server reads, closed
// by Stop.
type replConns struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (r *replConns) add(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.conns == nil {
		r.conns = map[net.Conn]struct{}{}
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *replConns) remove(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *replConns) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
}

// serveRepl steps the frames a peer sends on c until it ends or this
// server stops. With TLS only a member's certificate may send. gc is the
// gate's record of c (nil in tests): the connection counts as admitted
// with a call in progress for as long as it is open. ack: the peer waits
// for replAck once the connection is admitted.
func (s *Server) serveRepl(c net.Conn, gc *gatedConn, ack bool) {
	defer c.Close()
	if tc, ok := c.(*tls.Conn); ok {
		if role, name, _ := tlsutil.StateRole(tc.ConnectionState()); role != tlsutil.RoleMember {
			s.lg.Warn("refused a replication connection: not a member's certificate",
				zap.String("role", role), zap.String("name", name), zap.Stringer("remote", c.RemoteAddr()))
			return
		}
	}
	if gc != nil {
		end, err := s.gate.beginConn(gc)
		if err != nil {
			s.lg.Warn("refused a replication connection", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
			return
		}
		defer end()
	}
	if !s.replIn.add(c) {
		return
	}
	defer s.replIn.remove(c)
	if ack {
		if err := c.SetWriteDeadline(time.Now().Add(replDialTimeout)); err != nil {
			return
		}
		if _, err := io.WriteString(c, replAck); err != nil {
			return
		}
	}
	if err := s.readRepl(c); err != nil && !s.stopped.Load() {
		s.lg.Debug("replication connection ended", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

func (s *Server) readRepl(c net.Conn) error {
	fr := frameReader{r: bufio.NewReaderSize(c, replReadBuffer), max: s.cfg.MaxMessageBytes}
	var bs []*kvpb.ReplBatch
	for {
		// Every whole frame already read in goes to the node in one input.
		bs = bs[:0]
		for len(bs) == 0 || fr.whole() {
			b, err := fr.next()
			if err != nil {
				return err
			}
			bs = append(bs, b)
		}
		if s.stopped.Load() {
			return ErrStopped
		}
		s.onBatches(slices.Clone(bs))
	}
}

// frameReader reads a replication connection's frames.
type frameReader struct {
	r       *bufio.Reader
	max     int
	scratch []byte // for a frame larger than what is buffered
}

// whole reports whether a whole frame is buffered (without reading: Peek
// would wait for more).
func (f *frameReader) whole() bool {
	if f.r.Buffered() < replHeader {
		return false
	}
	hdr, _ := f.r.Peek(replHeader)
	return f.r.Buffered() >= replHeader+int(binary.BigEndian.Uint32(hdr))
}

// next reads and decodes one frame.
func (f *frameReader) next() (*kvpb.ReplBatch, error) {
	var hdr [replHeader]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > f.max {
		return nil, fmt.Errorf("frame of %d bytes over max-message-bytes %d", n, f.max)
	}
	b := &kvpb.ReplBatch{} // the generated code copies what it keeps
	if n <= f.r.Buffered() {
		buf, _ := f.r.Peek(n)
		err := b.UnmarshalChecked(buf)
		_, _ = f.r.Discard(n)
		return b, err
	}
	if cap(f.scratch) < n {
		f.scratch = make([]byte, n)
	}
	buf := f.scratch[:n]
	if _, err := io.ReadFull(f.r, buf); err != nil {
		return nil, err
	}
	if n > maxBatchBytes {
		f.scratch = nil // a rare huge frame: do not keep its buffer
	}
	return b, b.UnmarshalChecked(buf)
}

// replSender is a peer's sending end: a replication connection, or a gRPC
// Replicate stream to a server that does not speak the transport.
type replSender interface {
	send(b *kvpb.ReplBatch) error
	// close ends the sender; it may be called from another goroutine
	// than the one sending (setCut), which then sees its send fail.
	close()
}

// errNoTransport: the peer answered, but not as a server that speaks the
// replication transport; its gRPC Replicate stream is used instead.
var errNoTransport = errors.New("peer does not speak the replication transport")

// replConn is a peer's sending end.
type replConn struct {
	c    net.Conn    // the TLS connection over raw, or raw
	raw  net.Conn    // TCP: closing it ends a blocked write at once
	stop func() bool // unregisters the close at the server's stop
	buf  []byte
}

// dialRepl opens a replication connection to addr.
func (s *Server) dialRepl(addr string) (*replConn, error) {
	d := net.Dialer{Timeout: replDialTimeout}
	c, err := d.DialContext(s.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// A write blocked on a peer that does not read ends when this server
	// stops, not at its timeout: Stop waits for the sender.
	rc := &replConn{c: withRawIO(c), raw: c, stop: context.AfterFunc(s.ctx, func() { _ = c.Close() })}
	if s.replTLS == nil {
		if err := prefaceExchange(c); err != nil {
			rc.close()
			return nil, err
		}
		return rc, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		rc.close()
		return nil, err
	}
	cfg := s.replTLS.Clone()
	cfg.ServerName = host // as gRPC verifies a server: by the address dialled
	tc := tls.Client(rc.c, cfg)
	ctx, cancel := context.WithTimeout(s.ctx, replDialTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	switch {
	case err != nil:
		// A server that does not offer replALPN fails the handshake; so
		// would a bad certificate, but then gRPC fails alike.
		err = fmt.Errorf("%w: %w", errNoTransport, err)
	case tc.ConnectionState().NegotiatedProtocol != replALPN:
		err = fmt.Errorf("%w: %s does not offer %s", errNoTransport, addr, replALPN)
	}
	if err != nil {
		rc.close()
		return nil, err
	}
	rc.c = tc
	return rc, nil
}

// prefaceExchange sends replPreface on a plaintext connection and waits
// for replAck.
func prefaceExchange(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(replDialTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, replPreface); err != nil {
		return err
	}
	got := make([]byte, len(replAck))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != replAck {
		return fmt.Errorf("%w: answered the preface with %q (%v)", errNoTransport, got, err)
	}
	return c.SetDeadline(time.Time{})
}

// send writes b as one frame.
func (rc *replConn) send(b *kvpb.ReplBatch) error {
	n := b.SizeVT()
	if cap(rc.buf) < replHeader+n {
		rc.buf = make([]byte, replHeader+n)
	}
	buf := rc.buf[:replHeader+n]
	binary.BigEndian.PutUint32(buf, uint32(n))
	if _, err := b.MarshalToSizedBufferVT(buf[replHeader:]); err != nil {
		return err
	}
	if err := rc.c.SetWriteDeadline(time.Now().Add(replWriteTimeout)); err != nil {
		return err
	}
	_, err := rc.c.Write(buf)
	if cap(rc.buf) > maxBatchBytes+replHeader {
		rc.buf = nil // a rare huge batch: do not keep its buffer
	}
	return err
}

func (rc *replConn) close() {
	rc.stop()
	_ = rc.raw.Close()
}
