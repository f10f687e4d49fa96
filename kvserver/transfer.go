package kvserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/chainstore"
	"github.com/ecskv/ecskv/kvserver/storage"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Partition transfer (DESIGN §4). A learner's node asks its tail for a
// snapshot; the shell turns that into a Snapshot call to the tail, whose
// node decides whether to feed this learner and at which seq. The tail
// streams the records of a pebble snapshot taken right then; the learner
// writes them chunk by chunk while its node still waits for them, then
// hands the node the snapshot's seq and dedup table.

// snapshotChunkBytes sizes the chunks of a partition snapshot.
const snapshotChunkBytes = 256 << 10

// adoptWait bounds how long a snapshot request that names a chain version
// newer than this server's waits for this server to adopt it. The ECS
// publishes a ring to every server at once, so a learner often asks its
// tail before the tail has seen the ring that names it; refused, the
// learner would ask again only after its retransmit interval (1 s). The
// wait ends before that retry, which a running pull would swallow.
const adoptWait = 500 * time.Millisecond

type snapKey struct {
	to string
	p  int
}

// snapTx is a snapshot the tail's node decided to send.
type snapTx struct {
	send  chainsm.SnapshotSend
	fn    func(fn func(ns, key []byte, rec storage.Record) error) error
	close func()
}

// onBatches hands one peer's messages to the node, in order.
func (s *Server) onBatches(bs []*kvpb.ReplBatch) {
	now := time.Now().UnixNano()
	for _, b := range bs {
		if b.SentUnixNano > 0 {
			s.metrics.stage.hop.Observe(float64(max(now-b.SentUnixNano, 0)) / 1e9)
		}
		updates := 0
		for _, pm := range b.Msgs {
			updates += len(pm.Entries)
		}
		if updates > 0 {
			s.metrics.batches.Observe(float64(updates))
		}
	}
	s.core.post(input{f: func(n *chainsm.Node) {
		now := s.core.now()
		for _, b := range bs {
			for _, pm := range b.Msgs {
				if m, ok := fromPBMsg(b.From, pm); ok {
					m.To = s.cfg.ID
					n.Step(now, m)
				}
			}
		}
	}})
}

// takeSnapshotLocked captures the partition as the node sees it now, for
// the learner's stream to send.
func (c *core) takeSnapshotLocked(ss chainsm.SnapshotSend) {
	k := snapKey{ss.To, ss.Part}
	if old, ok := c.snaps[k]; ok {
		old.close()
	}
	snap := c.s.store.NewSnapshot()
	c.snaps[k] = &snapTx{send: ss, close: snap.Close,
		fn: func(fn func(ns, key []byte, rec storage.Record) error) error { return snap.Scan(ss.Part, fn) }}
	close(c.snapCh)
	c.snapCh = make(chan struct{})
}

// snapWait bounds how long a snapshot request waits for a snapshot the
// node deferred: a copy holds only what is synced up the chain, so the
// node takes it once what it applied is (a sync and a hop away; it takes
// no new entries meanwhile). Refused at once, the learner would ask again
// only after its retransmit interval (1 s), and likely find the node
// behind again.
const snapWait = time.Second

// takeSnapshot returns the snapshot the node took for k, waiting up to
// snapWait for a deferred one.
func (c *core) takeSnapshot(ctx context.Context, k snapKey) (*snapTx, bool) {
	ctx, cancel := context.WithTimeout(ctx, snapWait)
	defer cancel()
	for {
		c.mu.Lock()
		tx, ok := c.snaps[k]
		delete(c.snaps, k)
		taken := c.snapCh
		learning := c.node.Deferred(k.p, k.to)
		c.mu.Unlock()
		if ok || !learning {
			return tx, ok
		}
		select {
		case <-taken:
		case <-ctx.Done():
			return nil, false
		case <-c.s.stopc:
			return nil, false
		}
	}
}

// serveSnapshot is the tail's side of a Snapshot call.
func (c *core) serveSnapshot(req *kvpb.SnapshotRequest, stream kvpb.Replication_SnapshotServer) error {
	k := snapKey{req.From, int(req.Partition)}
	c.awaitVersion(stream.Context(), int(req.Partition), req.ChainVersion)
	c.do(func(n *chainsm.Node) {
		n.Step(c.now(), chainsm.Msg{Kind: chainsm.MsgSnapReq, From: req.From, To: c.s.cfg.ID, Part: int(req.Partition), Ver: req.ChainVersion})
	})
	tx, ok := c.takeSnapshot(stream.Context(), k)
	if !ok {
		return status.Errorf(codes.FailedPrecondition, "kvserver: %s is not the learner of partition %d at chain version %d here", req.From, req.Partition, req.ChainVersion)
	}
	defer tx.close()
	chunk := &kvpb.SnapshotChunk{AppliedSeq: tx.send.Seq}
	size := 0
	flush := func() error {
		c.s.limiter.wait(c.s.ctx, size)
		err := stream.Send(chunk)
		chunk, size = &kvpb.SnapshotChunk{AppliedSeq: tx.send.Seq}, 0
		return err
	}
	err := tx.fn(func(ns, key []byte, rec storage.Record) error {
		chunk.Records = append(chunk.Records, &kvpb.Op{Ns: bytes.Clone(ns), Key: bytes.Clone(key), Value: bytes.Clone(rec.Value), ExpiryMs: rec.ExpiryMs})
		chunk.Seqs = append(chunk.Seqs, rec.Seq)
		if size += len(key) + len(rec.Value) + 32; size >= snapshotChunkBytes {
			return flush()
		}
		return nil
	})
	if err != nil {
		return status.Errorf(codes.Internal, "kvserver: snapshot of partition %d: %v", req.Partition, err)
	}
	chunk.Last, chunk.Dedup = true, toPBDedup(tx.send.Dedup)
	return flush()
}

// awaitVersion waits, at most adoptWait, until the node follows partition
// p at chain version ver or a later one. Only the wait is decided here: the
// node still judges the request at whatever version it then follows.
func (c *core) awaitVersion(ctx context.Context, p int, ver uint64) {
	ctx, cancel := context.WithTimeout(ctx, adoptWait)
	defer cancel()
	for {
		adopted := c.adoptNotify() // before the check: an adoption after it closes this
		c.mu.Lock()
		in, ok := c.node.Info(p)
		c.mu.Unlock()
		if ok && in.Ver >= ver {
			return
		}
		select {
		case <-adopted:
		case <-ctx.Done():
			return
		case <-c.s.stopc:
			return
		}
	}
}

// startPull runs a learner's snapshot call for the node's request, one per
// partition at a time.
func (c *core) startPull(m chainsm.Msg) {
	c.mu.Lock()
	busy := c.pulling[m.Part]
	c.pulling[m.Part] = true
	c.mu.Unlock()
	if busy {
		return
	}
	if !c.s.goAttach(func() {
		defer func() {
			c.mu.Lock()
			delete(c.pulling, m.Part)
			c.mu.Unlock()
		}()
		start := time.Now()
		n, err := c.pull(m)
		switch {
		case err == nil:
			c.s.lg.Info("learner caught up", zap.Int("partition", m.Part), zap.Int("records", n), zap.Duration("took", time.Since(start)))
		case c.s.ctx.Err() == nil:
			// The node asks again after its retry interval.
			c.s.lg.Debug("snapshot failed", zap.Int("partition", m.Part), zap.String("tail", m.To), zap.Error(err))
		}
	}) {
		c.mu.Lock()
		delete(c.pulling, m.Part)
		c.mu.Unlock()
	}
}

// pull copies one snapshot from the tail.
func (c *core) pull(m chainsm.Msg) (int, error) {
	addr, ok := c.s.addrOf(m.To)
	if !ok {
		return 0, fmt.Errorf("tail %q has no address", m.To)
	}
	conn, err := c.s.peers.conn(addr)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()
	stream, err := kvpb.NewReplicationClient(conn).Snapshot(ctx, &kvpb.SnapshotRequest{
		From: c.s.cfg.ID, Partition: uint32(m.Part), Epoch: c.adopted.Load(), ChainVersion: m.Ver,
	})
	if err != nil {
		return 0, err
	}
	n, first := 0, true
	var pulled uint64 // bytes of this copy, in copy.inProgress until it ends
	defer func() { c.s.copy.inProgress.Add(-pulled) }()
	for {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, errors.New("snapshot stream ended without its last chunk")
		}
		if err != nil {
			return n, err
		}
		if err := c.ingestChunk(m, ch, first); err != nil {
			return n, err
		}
		first = false
		n += len(ch.Records)
		b := uint64(c.s.metrics.transferBytes(ch))
		c.s.copy.keys.Add(uint64(len(ch.Records)))
		c.s.copy.bytes.Add(b)
		c.s.copy.inProgress.Add(b)
		pulled += b
		if ch.Last {
			c.do(func(nd *chainsm.Node) {
				nd.Step(c.now(), chainsm.Msg{Kind: chainsm.MsgSnapshot, From: m.To, To: c.s.cfg.ID, Part: m.Part, Ver: m.Ver,
					Seq: ch.AppliedSeq, Dedup: fromPBDedup(ch.Dedup)})
			})
			return n, nil
		}
	}
}

// ingestChunk writes one chunk of snapshot records (chainstore.IngestChunk).
func (c *core) ingestChunk(m chainsm.Msg, ch *kvpb.SnapshotChunk, first bool) error {
	entries := make([]storage.Entry, len(ch.Records))
	for i, r := range ch.Records {
		if i >= len(ch.Seqs) {
			return errors.New("snapshot chunk: fewer seqs than records")
		}
		entries[i] = storage.Entry{NS: r.Ns, Key: r.Key, Record: storage.Record{Seq: ch.Seqs[i], ExpiryMs: r.ExpiryMs, Value: r.Value}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return chainstore.IngestChunk(c.s.store, c.node, m.Part, m.Ver, entries, first)
}

// byteLimiter bounds the rate of snapshot transfer so rebalancing leaves
// room for foreground traffic.
type byteLimiter struct{ l *rate.Limiter }

func newByteLimiter(bytesPerSec int64) *byteLimiter {
	if bytesPerSec <= 0 {
		return &byteLimiter{}
	}
	return &byteLimiter{l: rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, 1<<30)))}
}

func (b *byteLimiter) wait(ctx context.Context, n int) {
	if b.l == nil || n <= 0 {
		return
	}
	_ = b.l.WaitN(ctx, min(n, b.l.Burst()))
}
