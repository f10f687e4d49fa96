package kvserver

import (
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"go.uber.org/zap"
)

// adoptRing brings every partition's replica state to the chains of r.
// Only partitions whose chain version changed are touched.
func (s *Server) adoptRing(r *ringmeta.Ring) {
	for p, ch := range r.Chains {
		ps := s.parts.get(p)
		ps.mu.Lock()
		if ps.version != ch.Version || !ps.loaded {
			s.adoptChainLocked(ps, p, ch, r.Epoch)
		}
		ps.mu.Unlock()
	}
}

// adoptChainLocked applies partition p's new chain (DESIGN §4 membership
// changes). ps.mu is held.
func (s *Server) adoptChainLocked(ps *partState, p int, ch ringmeta.Chain, epoch uint64) {
	me := s.cfg.ID
	i := ch.Index(me)
	// A removal, or a first look at a chain after a restart, may leave some
	// other member with a read lease of the old chain.
	removed := slices.ContainsFunc(ps.members, func(id string) bool { return ch.Index(id) < 0 }) ||
		ps.members == nil && len(ch.Members) > 1
	ps.version, ps.members, ps.since = ch.Version, slices.Clone(ch.Members), epoch
	if i < 0 {
		s.leaveLocked(ps, p, ch.Learner == me)
		return
	}
	promoted := ps.catchup != nil
	if promoted {
		ps.catchup.cancel() // promoted: the learner is now a member
		ps.catchup = nil
	}
	if err := s.loadLocked(ps, p); err != nil {
		s.lg.Error("load partition", zap.Int("partition", p), zap.Error(err))
		return
	}
	ps.pred, ps.succ = "", ""
	if i > 0 {
		ps.pred = ch.Members[i-1]
	}
	if i < len(ch.Members)-1 {
		ps.succ = ch.Members[i+1]
	}
	if i != 0 {
		// Only the head answers writers; a former head's clients retry there.
		ps.failWaitersLocked(errChainChanged)
	}
	if removed {
		// A removed member may still hold a read lease granted under the old
		// version: nothing commits or is read here until it has run out.
		ps.holdUntil = time.Now().Add(s.holdback())
	}
	s.setLearnerLocked(ps, ch.Learner)
	switch {
	case ps.succ == "":
		// The tail: everything it holds is committed (DESIGN §4).
		ps.commitLocked(ps.applied)
		if ps.pred != "" {
			s.ackLocked(ps, p)
		}
	default:
		// A new version, maybe a new successor: it drops what was sent under
		// the old version and asks for what it lacks with a nack, which is
		// lost if it adopted first. Resend the in-flight list under the new
		// version now rather than a retransmit interval later.
		if ups := ps.resendLocked(ps.committed, time.Now()); len(ups) > 0 {
			s.peers.sendUpdates(ps.succ, ups)
		}
	}
	// A sync in progress survives a later change (say a failed head is
	// stripped): this member still lacks what the old tail committed.
	ps.syncing = (promoted || ps.syncing) && ps.pred != ""
	ps.syncTo = 0
	if ps.pred != "" {
		ps.nackedAt = time.Now()
		s.peers.sendNack(ps.pred, &kvpb.Ack{Partition: uint32(p), ChainVersion: ps.version, Seq: ps.applied})
	}
	s.store.InvalidateCache(p)
}

// leaveLocked handles a partition this server is no longer a member of: its
// data goes (another incarnation will copy it afresh if ever placed here
// again), or, as a learner, it starts catching up.
func (s *Server) leaveLocked(ps *partState, p int, learner bool) {
	ps.failWaitersLocked(errChainChanged)
	ps.syncing = false
	ps.pred, ps.succ, ps.learner, ps.recent, ps.feeding = "", "", "", nil, false
	ps.log, ps.dirty = nil, map[string]int{}
	ps.dedup.reset()
	if learner {
		if ps.catchup == nil {
			s.startCatchupLocked(ps, p)
		}
		return
	}
	wasLearner := ps.catchup != nil
	if wasLearner {
		ps.catchup.cancel()
		ps.catchup = nil
	}
	if ps.loaded && (ps.applied > 0 || wasLearner) || !ps.loaded && s.stored[p] {
		if err := s.store.DropPartition(p); err != nil {
			s.lg.Error("drop partition", zap.Int("partition", p), zap.Error(err))
		}
	}
	ps.applied, ps.committed, ps.loaded = 0, 0, true
}

// setLearnerLocked follows the chain's learner field; only the tail feeds a
// learner. Forwarding starts when the learner asks for its snapshot. A tail
// whose learner was just promoted to its successor keeps the recent updates
// so the new successor can fill any gap left by the catch-up stream; it
// keeps naming it (not feeding) while it may still need them, so that a
// later change that keeps the successor (say a failed head stripped) does
// not drop them.
func (s *Server) setLearnerLocked(ps *partState, learner string) {
	switch {
	case ps.succ != "":
		if ps.succ != ps.learner {
			ps.recent = nil
		}
		ps.learner, ps.learnFrom, ps.feeding = "", 0, false
		if ps.recent != nil {
			ps.learner = ps.succ
		}
	case learner != ps.learner:
		ps.learner, ps.learnFrom, ps.feeding, ps.recent = learner, 0, false, nil
	}
}

// ackLocked tells the predecessor everything up to committed is committed.
func (s *Server) ackLocked(ps *partState, p int) {
	if ps.pred == "" {
		return
	}
	if d := time.Until(ps.holdUntil); d > 0 {
		if !ps.ackPending {
			ps.ackPending = true
			s.scheduleAck(p, d)
		}
		return
	}
	s.peers.sendAck(ps.pred, &kvpb.Ack{Partition: uint32(p), ChainVersion: ps.version, Seq: ps.committed})
}

// scheduleAck acks partition p once its holdback has passed.
func (s *Server) scheduleAck(p int, d time.Duration) {
	s.afterFunc(d, func() {
		if s.ctx.Err() != nil {
			return
		}
		ps := s.parts.get(p)
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.ackPending = false
		if ps.succ == "" && ps.pred != "" && !time.Now().Before(ps.holdUntil) {
			s.peers.sendAck(ps.pred, &kvpb.Ack{Partition: uint32(p), ChainVersion: ps.version, Seq: ps.committed})
		}
	})
}
