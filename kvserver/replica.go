package kvserver

import (
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"go.uber.org/zap"
)

// maxRecent bounds the updates a tail keeps for a learner's resends.
const maxRecent = 8192

// appliedUpdate is an update applied but not yet synced and passed on.
type appliedUpdate struct {
	p   int
	seq uint64
}

// onBatches handles messages from one peer's stream, in order. The stream
// is handled by one goroutine, so updates of a partition arrive in seq order.
// Every update of the group is applied first and made durable by one WAL
// sync before anything is passed on or acknowledged.
//
// Acks are taken before that sync: they come from this member's successor
// in other partitions than the updates (a member's predecessor is never its
// successor), commit only entries this member synced before it forwarded
// them, and so need not wait for an fsync of unrelated updates (which would
// add one WAL sync per hop to every write's latency).
func (s *Server) onBatches(bs []*kvpb.ReplBatch) {
	var done []appliedUpdate
	n := 0
	for _, b := range bs {
		n += len(b.Updates)
		for _, u := range b.Updates {
			if a, ok := s.onUpdate(b.From, u); ok {
				done = append(done, a)
			}
		}
	}
	if n > 0 {
		s.metrics.batches.Observe(float64(n))
	}
	for _, b := range bs {
		for _, a := range b.Acks {
			s.onAck(b.From, a)
		}
	}
	if len(done) > 0 {
		if err := s.store.SyncWAL(); err != nil {
			s.lg.Error("sync replicated batch", zap.Error(err))
			return
		}
		s.afterSync(done)
	}
	for _, b := range bs {
		for _, x := range b.Nacks {
			s.onNack(b.From, x)
		}
		for _, y := range b.Syncs {
			s.onSync(b.From, y)
		}
	}
}

// onUpdate applies one update from the predecessor (or, to a learner, from
// the tail). It reports the updates that need the post-sync step.
func (s *Server) onUpdate(from string, u *kvpb.Update) (appliedUpdate, bool) {
	p := int(u.Partition)
	ps, ok := s.parts.lookup(p)
	if !ok {
		return appliedUpdate{}, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if u.ToLearner {
		if ps.catchup != nil || from != ps.pred {
			return s.onLearnerUpdateLocked(ps, p, from, u)
		}
		// A promoted learner: what the old tail committed and forwarded
		// before it learned of the promotion is history this member must
		// hold (nothing else would resend it), so take it in seq order.
		u = retag(u, ps.version, false)
	}
	if u.ChainVersion != ps.version || from != ps.pred || !ps.loaded {
		s.metrics.dropped.WithLabelValues(dropVersion).Inc()
		return appliedUpdate{}, false // stale sender, or our ring is behind: the sender retransmits
	}
	switch {
	case u.Seq <= ps.applied:
		s.onDuplicateLocked(ps, p, u)
		return appliedUpdate{}, false
	case u.Seq > ps.applied+1:
		// A gap: something was lost on the way. Ask for it.
		s.metrics.dropped.WithLabelValues(dropGap).Inc()
		s.peers.sendNack(from, &kvpb.Ack{Partition: u.Partition, ChainVersion: ps.version, Seq: ps.applied})
		return appliedUpdate{}, false
	}
	if err := s.applyUpdateLocked(ps, p, u); err != nil {
		s.lg.Error("apply update", zap.Int("partition", p), zap.Uint64("seq", u.Seq), zap.Error(err))
		return appliedUpdate{}, false
	}
	if ps.succ != "" {
		ps.appendLogLocked(newEntry(u, false))
	}
	return appliedUpdate{p, u.Seq}, true
}

// applyUpdateLocked applies u unsynced and records its request id.
func (s *Server) applyUpdateLocked(ps *partState, p int, u *kvpb.Update) error {
	if _, err := s.store.ApplyOpts(p, u.Seq, fromPBOps(u.Ops), nowMs(), false); err != nil {
		return err
	}
	ps.applied = u.Seq
	ps.dedup.add(dedupKey{u.ClientId, u.ClientSeq}, dedupVal{seq: u.Seq, status: u.Status})
	s.forwardLearnerLocked(ps, u)
	return nil
}

// onDuplicateLocked answers an update this member already applied: a
// retransmission. Acks were lost if it is committed; otherwise pass it on.
func (s *Server) onDuplicateLocked(ps *partState, p int, u *kvpb.Update) {
	if ps.succ == "" || u.Seq <= ps.committed {
		if ps.succ == "" {
			ps.commitLocked(ps.applied)
		}
		s.ackLocked(ps, p)
		return
	}
	if e := ps.findLocked(u.Seq); e != nil {
		if !e.sent {
			return // not synced here yet; it goes on after the sync
		}
		e.sentAt = time.Now()
		s.peers.sendUpdates(ps.succ, []*kvpb.Update{e.wire(ps.version)})
		return
	}
	s.peers.sendUpdates(ps.succ, []*kvpb.Update{u})
}

// afterSync passes synced updates on: the tail commits and acks, others
// forward to their successor.
func (s *Server) afterSync(done []appliedUpdate) {
	now := time.Now()
	for _, a := range done {
		ps := s.parts.get(a.p)
		ps.mu.Lock()
		if ps.succ == "" {
			ps.commitLocked(a.seq)
			s.checkSyncedLocked(ps, a.p)
			s.ackLocked(ps, a.p)
		} else if ups := ps.unsentLocked(a.seq, now); len(ups) > 0 {
			s.peers.sendUpdates(ps.succ, ups)
		}
		ps.mu.Unlock()
	}
}

// onAck handles "committed up to seq" from the successor.
func (s *Server) onAck(from string, a *kvpb.Ack) {
	p := int(a.Partition)
	ps, ok := s.parts.lookup(p)
	if !ok {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if a.ChainVersion != ps.version || from != ps.succ {
		return
	}
	ps.trimRecent(a.Seq) // the successor holds everything up to a.Seq
	if a.Seq <= ps.committed {
		return
	}
	ps.commitLocked(a.Seq)
	s.ackLocked(ps, p)
}

// onNack resends everything after seq to a successor (or learner) that
// found a gap or just joined.
func (s *Server) onNack(from string, n *kvpb.Ack) {
	p := int(n.Partition)
	ps, ok := s.parts.lookup(p)
	if !ok {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	switch {
	case from == ps.succ && n.ChainVersion == ps.version:
		var ups []*kvpb.Update
		for _, u := range ps.recent {
			if u.Seq > n.Seq && (len(ps.log) == 0 || u.Seq < ps.log[0].seq()) {
				ups = append(ups, retag(u, ps.version, false))
			}
		}
		ups = append(ups, ps.resendLocked(n.Seq, time.Now())...)
		if len(ups) > 0 {
			s.peers.sendUpdates(from, ups)
		}
		// Queued after the resends on the same stream: once the successor
		// applied this far it holds everything this member committed.
		s.peers.sendSync(from, &kvpb.Ack{Partition: n.Partition, ChainVersion: ps.version, Seq: ps.applied})
	case from == ps.learner && ps.feeding:
		var ups []*kvpb.Update
		for _, u := range ps.recent {
			if u.Seq > n.Seq {
				ups = append(ups, u)
			}
		}
		s.peers.sendUpdates(from, ups)
	}
}

// forwardLearnerLocked feeds an applied update to the learner this tail is
// catching up, once its snapshot was taken.
func (s *Server) forwardLearnerLocked(ps *partState, u *kvpb.Update) {
	if ps.learner == "" || !ps.feeding || u.Seq <= ps.learnFrom {
		return
	}
	lu := retag(u, u.ChainVersion, true)
	ps.recent = append(ps.recent, lu)
	if len(ps.recent) > maxRecent {
		ps.recent = ps.recent[len(ps.recent)-maxRecent:]
	}
	s.peers.sendUpdates(ps.learner, []*kvpb.Update{lu})
}

// retag copies an update for another version or destination.
func retag(u *kvpb.Update, version uint64, toLearner bool) *kvpb.Update {
	return &kvpb.Update{
		Partition: u.Partition, ChainVersion: version, Seq: u.Seq, Ops: u.Ops,
		ClientId: u.ClientId, ClientSeq: u.ClientSeq, Status: u.Status, ToLearner: toLearner,
	}
}

// trimRecent drops the kept learner updates the successor no longer needs.
func (ps *partState) trimRecent(upto uint64) {
	n := 0
	for n < len(ps.recent) && ps.recent[n].Seq <= upto {
		n++
	}
	ps.recent = ps.recent[n:]
	if len(ps.recent) == 0 {
		ps.recent = nil
	}
}

// onSync records how far a promoted tail must apply before it is caught up
// with its predecessor.
func (s *Server) onSync(from string, y *kvpb.Ack) {
	p := int(y.Partition)
	ps, ok := s.parts.lookup(p)
	if !ok {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.syncing && from == ps.pred && y.ChainVersion == ps.version && y.Seq > ps.syncTo {
		ps.syncTo = y.Seq
		s.checkSyncedLocked(ps, p)
	}
}

// checkSyncedLocked ends the promotion sync once the target is applied, and
// has it reported to the ECS, which clears this member's unsynced mark.
func (s *Server) checkSyncedLocked(ps *partState, p int) {
	if ps.syncing && ps.syncTo > 0 && ps.applied >= ps.syncTo {
		ps.syncing = false
		s.reportSyncedLocked(ps, p)
	}
}
