package kvserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
	"go.uber.org/zap"
)

// maxBuffered bounds the updates a learner holds while its snapshot loads;
// past it the catch-up starts over rather than grow without limit.
const maxBuffered = 1 << 16

// catchup is a learner's progress on one partition (DESIGN §4: snapshot of
// the tail at a known applied_seq, then every later update).
type catchup struct {
	cancel  context.CancelFunc
	version uint64
	ready   bool           // snapshot loaded: updates apply directly
	buf     []*kvpb.Update // updates that arrived during the snapshot
}

func (s *Server) startCatchupLocked(ps *partState, p int) {
	ctx, cancel := context.WithCancel(s.ctx)
	ps.catchup = &catchup{cancel: cancel, version: ps.version}
	version := ps.version
	s.goAttach(func() { s.runCatchup(ctx, p, version) })
}

// runCatchup copies partition p from its tail until it succeeds or the
// chain moves on (the context is cancelled then).
func (s *Server) runCatchup(ctx context.Context, p int, version uint64) {
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 2*time.Second) {
		start := time.Now()
		n, err := s.catchupOnce(ctx, p, version)
		if err == nil {
			s.lg.Info("learner caught up", zap.Int("partition", p), zap.Int("records", n), zap.Duration("took", time.Since(start)))
			return
		}
		if ctx.Err() == nil {
			s.lg.Warn("catch-up failed; retrying", zap.Int("partition", p), zap.Error(err))
			time.Sleep(backoff)
		}
	}
}

func (s *Server) catchupOnce(ctx context.Context, p int, version uint64) (int, error) {
	ps := s.parts.get(p)
	ps.mu.Lock()
	if ps.catchup == nil || ps.catchup.version != version || len(ps.members) == 0 {
		ps.mu.Unlock()
		return 0, nil
	}
	tail := ps.members[len(ps.members)-1]
	cu := ps.catchup
	cu.ready, cu.buf = false, nil
	err := s.store.DropPartition(p)
	ps.applied, ps.committed, ps.loaded = 0, 0, true
	ps.mu.Unlock()
	if err != nil {
		return 0, err
	}
	addr, ok := s.addrOf(tail)
	if !ok {
		return 0, fmt.Errorf("tail %q has no address", tail)
	}
	conn, err := s.peers.conn(addr)
	if err != nil {
		return 0, err
	}
	stream, err := kvpb.NewReplicationClient(conn).Snapshot(ctx, &kvpb.SnapshotRequest{
		From: s.cfg.ID, Partition: uint32(p), Epoch: s.appliedEpoch(),
	})
	if err != nil {
		return 0, err
	}
	n, snapSeq, err := s.ingestSnapshot(p, cu, stream)
	if err != nil {
		return n, err
	}
	if err := s.finishCatchup(ps, p, version, tail, snapSeq); err != nil {
		return n, err
	}
	return n, s.announceReady(ctx, p, version)
}

// ingestChunk stores a snapshot chunk under the partition's lock, and only
// while cu is still its catch-up: a cancelled catch-up must not leave records
// behind after the partition was dropped.
func (s *Server) ingestChunk(p int, cu *catchup, entries []storage.Entry, applied uint64) error {
	ps := s.parts.get(p)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.catchup != cu {
		return context.Canceled
	}
	return s.store.Ingest(p, entries, applied)
}

func (s *Server) ingestSnapshot(p int, cu *catchup, stream kvpb.Replication_SnapshotClient) (int, uint64, error) {
	n := 0
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, 0, errors.New("snapshot stream ended without its last chunk")
		}
		if err != nil {
			return n, 0, err
		}
		entries := make([]storage.Entry, len(c.Records))
		for i, r := range c.Records {
			entries[i] = storage.Entry{NS: r.Ns, Key: r.Key, Record: storage.Record{Seq: c.Seqs[i], ExpiryMs: r.ExpiryMs, Value: r.Value}}
		}
		if err := s.ingestChunk(p, cu, entries, c.AppliedSeq); err != nil {
			return n, 0, err
		}
		n += len(entries)
		s.metrics.transferBytes(c)
		if c.Last {
			return n, c.AppliedSeq, nil
		}
	}
}

// finishCatchup applies the updates buffered during the snapshot and
// switches the learner to applying updates as they come.
func (s *Server) finishCatchup(ps *partState, p int, version uint64, tail string, snapSeq uint64) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.catchup == nil || ps.catchup.version != version {
		return context.Canceled
	}
	ps.applied = snapSeq
	for _, u := range ps.catchup.buf {
		if u.Seq <= ps.applied {
			continue
		}
		if u.Seq != ps.applied+1 {
			s.peers.sendNack(tail, &kvpb.Ack{Partition: uint32(p), ChainVersion: ps.version, Seq: ps.applied})
			break
		}
		if err := s.applyUpdateLocked(ps, p, u); err != nil {
			return err
		}
	}
	ps.catchup.ready, ps.catchup.buf = true, nil
	return s.store.SyncWAL()
}

// announceReady asks the ECS to make this learner the chain's new tail.
func (s *Server) announceReady(ctx context.Context, p int, version uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.etcd.Put(ctx, etcdkeys.Ready(s.cfg.Cluster, s.cfg.ID, p), strconv.FormatUint(version, 10))
	return err
}

// onLearnerUpdateLocked takes an update the tail forwards to this learner.
func (s *Server) onLearnerUpdateLocked(ps *partState, p int, from string, u *kvpb.Update) (appliedUpdate, bool) {
	c := ps.catchup
	if c == nil || len(ps.members) == 0 || from != ps.members[len(ps.members)-1] {
		return appliedUpdate{}, false
	}
	if !c.ready {
		if len(c.buf) >= maxBuffered {
			c.buf = nil // the catch-up loop will notice the gap and nack
		}
		c.buf = append(c.buf, u)
		return appliedUpdate{}, false
	}
	switch {
	case u.Seq <= ps.applied:
		return appliedUpdate{}, false
	case u.Seq > ps.applied+1:
		s.peers.sendNack(from, &kvpb.Ack{Partition: u.Partition, ChainVersion: ps.version, Seq: ps.applied})
		return appliedUpdate{}, false
	}
	if err := s.applyUpdateLocked(ps, p, u); err != nil {
		s.lg.Error("learner apply", zap.Int("partition", p), zap.Error(err))
		return appliedUpdate{}, false
	}
	return appliedUpdate{p, u.Seq}, true
}
