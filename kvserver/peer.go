package kvserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/grpcopt"
	"github.com/ecskv/ecskv/common/kvpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Sender batching: one frame carries at most this much.
const (
	maxBatchMsgs  = 512
	maxBatchBytes = 4 << 20
)

// peerSet owns one sender per peer server and the gRPC connections to them.
type peerSet struct {
	s *Server

	mu    sync.Mutex // guards peers, conns and cut
	peers map[string]*peer
	conns map[string]*grpc.ClientConn
	cut   map[string]bool // tests: peers whose replication link is down
}

// peer queues messages for one server; its goroutine drains the queue into
// batched ReplBatch frames on one long-lived connection (replnet.go). Lost messages (a
// broken connection) are recovered by retransmission and nacks, so sending is
// fire-and-forget.
type peer struct {
	id  string
	set *peerSet
	mu  sync.Mutex // guards q and queued
	q   kvpb.ReplBatch
	// queued is when the oldest message in q was queued (unix ns).
	queued int64
	wake   chan struct{}

	liveMu  sync.Mutex
	live    replSender // the open sender, for setCut
	viaGRPC bool       // the peer was last reached over gRPC (logged once)
}

func newPeerSet(s *Server) *peerSet {
	return &peerSet{s: s, peers: map[string]*peer{}, conns: map[string]*grpc.ClientConn{}}
}

func (ps *peerSet) get(id string) *peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.peers[id]
	if !ok {
		p = &peer{id: id, set: ps, wake: make(chan struct{}, 1)}
		ps.peers[id] = p
		ps.s.goAttach(p.run)
	}
	return p
}

// conn returns the shared connection to addr.
func (ps *peerSet) conn(addr string) (*grpc.ClientConn, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if c, ok := ps.conns[addr]; ok {
		return c, nil
	}
	opts := append([]grpc.DialOption{ps.s.dialCreds,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(ps.s.cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(ps.s.cfg.MaxMessageBytes))},
		grpcopt.Dial()...)
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("kvserver: dial %s: %w", addr, err)
	}
	ps.conns[addr] = c
	return c, nil
}

func (ps *peerSet) closeAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for a, c := range ps.conns {
		_ = c.Close()
		delete(ps.conns, a)
	}
}

// queue adds a chain protocol message to peer id's queue without waking
// its sender, and returns the peer (nil for no id). The caller wakes it
// (signal) once it has queued everything it has: a step's messages to one
// peer then leave in one frame, where a sender woken by the first
// could take it alone.
func (ps *peerSet) queue(id string, m *kvpb.ChainMsg) *peer {
	if id == "" {
		return nil
	}
	p := ps.get(id)
	p.mu.Lock()
	if len(p.q.Msgs) == 0 {
		p.queued = time.Now().UnixNano()
	}
	p.q.Msgs = append(p.q.Msgs, m)
	p.mu.Unlock()
	return p
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take removes up to one batch worth of queued messages.
func (p *peer) take() *kvpb.ReplBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q.Msgs) == 0 {
		return nil
	}
	b := &kvpb.ReplBatch{From: p.set.s.cfg.ID, SentUnixNano: p.queued}
	n, size := 0, 0
	for n < len(p.q.Msgs) && n < maxBatchMsgs && size < maxBatchBytes {
		size += p.q.Msgs[n].SizeVT()
		n++
	}
	b.Msgs = p.q.Msgs[:n:n]
	p.q.Msgs = p.q.Msgs[n:]
	if len(p.q.Msgs) > 0 {
		p.queued = time.Now().UnixNano() // the rest waited less: near enough
		p.signal()
	}
	return b
}

// run keeps a replication connection to the peer open and sends whatever
// is queued.
func (p *peer) run() {
	s := p.set.s
	var conn replSender
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-p.wake:
		}
		for b := p.take(); b != nil; b = p.take() {
			if conn == nil {
				var err error
				if conn, err = p.open(); err != nil {
					s.lg.Debug("peer unreachable; dropping batch", zap.String("peer", p.id), zap.Error(err))
					s.sleepCtx(50 * time.Millisecond)
					continue
				}
			}
			if err := conn.send(b); err != nil {
				s.lg.Debug("peer connection broke", zap.String("peer", p.id), zap.Error(err))
				conn.close()
				conn = nil
			}
		}
	}
}

// open opens a sender to the peer: a replication connection, or, to a
// server that does not speak the transport (an older version), a gRPC
// Replicate stream. Each open tries the transport first: the peer may
// have been upgraded since.
func (p *peer) open() (replSender, error) {
	s := p.set.s
	addr, ok := s.addrOf(p.id)
	if !ok {
		return nil, fmt.Errorf("no address for %q", p.id)
	}
	p.set.mu.Lock()
	cut := p.set.cut[p.id]
	p.set.mu.Unlock()
	if cut {
		return nil, fmt.Errorf("link to %q cut", p.id)
	}
	var (
		snd replSender
		err error
		old = s.grpcReplOnly
	)
	if !old {
		snd, err = s.dialRepl(addr)
		old = errors.Is(err, errNoTransport)
	}
	if old {
		snd, err = p.set.openGRPC(addr)
	}
	if err != nil {
		return nil, err
	}
	p.liveMu.Lock()
	p.live = snd
	if _, grpcNow := snd.(*grpcSender); grpcNow != p.viaGRPC {
		p.viaGRPC = grpcNow
		if grpcNow {
			s.lg.Info("replicating to a peer over gRPC: it does not speak the replication transport (an older version)",
				zap.String("peer", p.id))
		}
	}
	p.liveMu.Unlock()
	return snd, nil
}

// reachedViaGRPC reports whether the peer was last reached over gRPC.
func (p *peer) reachedViaGRPC() bool {
	p.liveMu.Lock()
	defer p.liveMu.Unlock()
	return p.viaGRPC
}

// grpcSender sends over a peer's gRPC Replicate stream.
type grpcSender struct {
	stream kvpb.Replication_ReplicateClient
	cancel context.CancelFunc
}

func (g *grpcSender) send(b *kvpb.ReplBatch) error { return g.stream.Send(b) }
func (g *grpcSender) close()                       { g.cancel() }

// openGRPC opens a Replicate stream to addr.
func (ps *peerSet) openGRPC(addr string) (*grpcSender, error) {
	cc, err := ps.conn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ps.s.ctx)
	st, err := kvpb.NewReplicationClient(cc).Replicate(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kvserver: replicate to %s: %w", addr, err)
	}
	return &grpcSender{stream: st, cancel: cancel}, nil
}

// setCut takes the replication link to peer id down (tests): its
// connection is closed and no other is opened until it is set back.
func (ps *peerSet) setCut(id string, cut bool) {
	ps.mu.Lock()
	if ps.cut == nil {
		ps.cut = map[string]bool{}
	}
	ps.cut[id] = cut
	ps.mu.Unlock()
	if cut {
		p := ps.get(id)
		p.liveMu.Lock()
		if p.live != nil {
			p.live.close() // its sender sees the next write fail and redials
		}
		p.liveMu.Unlock()
	}
}

// addrOf resolves a server id through the current ring.
func (s *Server) addrOf(id string) (string, bool) {
	cur := s.ring.Load()
	if cur == nil {
		return "", false
	}
	srv, ok := cur.Server(id)
	return srv.Addr, ok && srv.Addr != ""
}
