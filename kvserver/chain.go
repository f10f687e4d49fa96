package kvserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// errChainChanged fails a waiting write whose chain changed before it
// committed; its outcome is unknown to this server, so the client retries
// with the same request id at the new head.
var errChainChanged = errors.New("kvserver: chain changed before the write committed; retry")

// headWrite runs one client write at the head of partition p (DESIGN §4):
// assign seq, apply locally, forward down the chain after the WAL sync, and
// answer only when the tail has acknowledged it. The answer is the status
// the head computed (SUCCESS/UPDATE/NOT_FOUND).
//
// expireOnly makes the write a TTL deletion that applies only if the key is
// still expired under the lock (a put may have revived it since the scan).
func (s *Server) headWrite(ctx context.Context, p int, version uint64, h *kvpb.RequestHeader, op storage.Op, expireOnly bool) (kvpb.Status, error) {
	ps := s.parts.get(p)
	id := dedupKey{scopedClientID(op.NS, h.GetClientId()), h.GetSeq()}
	ps.mu.Lock()
	if ps.version != version || ps.pred != "" || len(ps.members) == 0 || ps.members[0] != s.cfg.ID {
		ps.mu.Unlock()
		return kvpb.Status_SERVER_NOT_RESPONSIBLE, nil
	}
	if prev, ok := ps.dedup.get(id); ok {
		return s.awaitDuplicate(ctx, ps, prev)
	}
	if err := s.loadLocked(ps, p); err != nil {
		ps.mu.Unlock()
		return 0, err
	}
	if expireOnly {
		if _, live, err := s.store.Get(p, op.NS, op.Key, nowMs()); err != nil || live {
			ps.mu.Unlock()
			return kvpb.Status_SUCCESS, err
		}
	}
	seq := ps.applied + 1
	soleMember := ps.succ == ""
	// A chain of one commits on its own fsync, so it applies synced under
	// the lock: nothing unsynced is ever visible to its readers.
	existed, err := s.store.ApplyOpts(p, seq, []storage.Op{op}, nowMs(), soleMember)
	if err != nil {
		ps.mu.Unlock()
		return 0, err
	}
	ps.applied = seq
	st := writeStatus(op.Kind, existed[0])
	ps.dedup.add(id, dedupVal{seq: seq, status: st})
	upd := &kvpb.Update{
		Partition: uint32(p), ChainVersion: ps.version, Seq: seq, Ops: toPBOps([]storage.Op{op}),
		ClientId: id.client, ClientSeq: id.seq, Status: st,
	}
	s.forwardLearnerLocked(ps, upd)
	if soleMember {
		ps.committed = seq
		hold := ps.holdUntil
		ps.mu.Unlock()
		return st, waitUntil(ctx, hold)
	}
	e := newEntry(upd, true)
	ps.appendLogLocked(e)
	ps.mu.Unlock()

	// Group commit: one WAL sync makes this and every earlier apply durable.
	if err := s.store.SyncWAL(); err != nil {
		return 0, fmt.Errorf("kvserver: sync: %w", err)
	}
	forwarded := time.Now()
	ps.mu.Lock()
	if ups := ps.unsentLocked(seq, forwarded); len(ups) > 0 {
		s.peers.sendUpdates(ps.succ, ups)
	}
	ps.mu.Unlock()
	st, err = awaitEntry(ctx, e, st)
	if err == nil {
		s.metrics.commit.Observe(time.Since(forwarded).Seconds())
	}
	return st, err
}

// failWrites fails every write waiting at a head here (Stop: they could
// only time out, holding up the graceful stop). Clients retry them by id.
func (s *Server) failWrites(err error) {
	for p := 0; p < s.parts.count(); p++ {
		ps := s.parts.get(p)
		ps.mu.Lock()
		ps.failWaitersLocked(err)
		ps.mu.Unlock()
	}
}

// awaitDuplicate answers a retried write that this partition already
// sequenced: at once when committed, else when its entry commits. ps.mu is
// held on entry and released.
func (s *Server) awaitDuplicate(ctx context.Context, ps *partState, prev dedupVal) (kvpb.Status, error) {
	if prev.seq <= ps.committed {
		ps.mu.Unlock()
		return prev.status, nil
	}
	e := ps.findLocked(prev.seq)
	if e == nil {
		ps.mu.Unlock()
		return 0, errChainChanged
	}
	if e.done == nil {
		e.done = make(chan struct{}) // sequenced before this server became head
	}
	ps.mu.Unlock()
	return awaitEntry(ctx, e, prev.status)
}

func awaitEntry(ctx context.Context, e *entry, st kvpb.Status) (kvpb.Status, error) {
	select {
	case <-e.done:
		if e.err != nil {
			return 0, e.err
		}
		return st, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("kvserver: write not yet committed: %w", ctx.Err())
	}
}

// waitUntil blocks until t (a read-lease holdback) or ctx ends.
func waitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func writeStatus(k storage.OpKind, existed bool) kvpb.Status {
	switch {
	case k == storage.OpDelete && !existed:
		return kvpb.Status_NOT_FOUND
	case k == storage.OpPut && existed:
		return kvpb.Status_UPDATE
	}
	return kvpb.Status_SUCCESS
}

// loadLocked reads the partition's applied_seq from storage once. What was
// committed is not known after a restart: only an ack from the tail (or
// becoming the tail) raises committed again.
func (s *Server) loadLocked(ps *partState, p int) error {
	if ps.loaded {
		return nil
	}
	seq, err := s.store.AppliedSeq(p)
	if err != nil {
		return err
	}
	ps.applied, ps.loaded = seq, true
	return nil
}

func nowMs() int64 { return time.Now().UnixMilli() }
