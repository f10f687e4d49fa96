package chainsm

import (
	"slices"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// adopt follows partition p's chain of the ring adopted in epoch (DESIGN §4
// membership changes). Nothing changes for a chain version already
// followed; a first look after a start is a full adoption.
func (r *replica) adopt(now Mono, ch ringmeta.Chain, epoch uint64) {
	if r.known && ch.Version == r.ver {
		return
	}
	if ch.Version < r.ver {
		return // our storage is newer than this ring: wait for a newer one
	}
	me := r.n.cfg.ID
	i := ch.Index(me)
	// A removed member, or anyone of a chain we did not follow until now,
	// may still hold a read lease of the old chain: nothing commits or is
	// read here until it has run out.
	removed := !r.known && len(ch.Members) > 0 ||
		slices.ContainsFunc(r.members, func(id string) bool { return ch.Index(id) < 0 })
	wasHead, wasLearner, wasKnown, prevVer := r.isHead(), r.learning, r.known, r.ver
	prevSucc, prevMembers := r.succ, r.members
	r.ver, r.since, r.members = ch.Version, epoch, slices.Clone(ch.Members)
	r.upSynced, r.sentSynced, r.sentCommit = 0, 0, 0 // watermarks are per version
	r.prior = nil                                    // learnt again as this version's tail
	r.priorFloor = r.applied                         // an old tail may have committed any of it
	r.repLeft = 0                                    // a report repeats only for the version it was made at
	r.known = true
	if removed {
		r.holdUntil = max(r.holdUntil, now+r.n.cfg.Holdback())
	}
	switch {
	case i < 0 && ch.Learner == me:
		r.becomeLearner(now)
		return
	case i < 0:
		r.leave()
		return
	}
	r.idx = i
	r.pred, r.succ = "", ""
	if i > 0 {
		r.pred = ch.Members[i-1]
	}
	if i < len(ch.Members)-1 {
		r.succ = ch.Members[i+1]
	}
	if wasLearner {
		// Promoted: what the old tail committed before it learned of the
		// promotion may not have reached us; the hello's sync closes that.
		r.learning, r.installed, r.buf = false, false, nil
	}
	// Report the sync after a promotion, and after a restart whose storage
	// did not keep this chain version (a crash may have lost the record of
	// a promotion together with its unsent report). Report it again at a
	// version that only took members out: the ECS may still hold the mark
	// (a partition with a mark takes no step but a failover), and the
	// report made at the previous version may never reach it.
	keep := r.marked && onlyRemoved(prevMembers, ch)
	r.marked = r.reportSync || wasLearner || !wasKnown && r.stored && prevVer != ch.Version || keep
	r.reportSync = r.marked
	r.unsynced = r.pred != ""
	if wasHead && i != 0 {
		r.failWaiters(ErrChainChanged) // clients retry at the new head by id
	}
	if r.succ != "" {
		r.failReads(ErrNotResponsible)
	}
	r.setLearner(ch.Learner, prevSucc)
	for _, le := range r.log {
		le.sent = false // the new successor says what it lacks in its hello
	}
	r.helloDone = r.pred == ""
	r.syncTo = 0
	if r.pred != "" {
		r.hello(now)
	}
	if !wasKnown && !canaryNoProbe || wasKnown && !canaryNoReorderProbe && probeAfterChange(prevMembers, ch.Members, me) {
		// Those below may hold entries we never got: after a start (a
		// crash may have lost entries forwarded before their sync), and
		// after any chain change, since a reorder, this one or one we
		// never saw, may have put below us a member that got entries in
		// flight while it was above us (probe.go).
		r.reconciled = false
	}
	if r.succ == "" {
		r.reconciled = true // nobody below can hold more
	} else if !r.reconciled {
		r.probe(now)
	}
	r.n.store(StorageOp{Kind: StVersion, Part: r.p, Ver: r.ver, Epoch: epoch, Unsynced: r.marked})
	if r.succ == "" {
		// The tail commits what is synced here and, by its predecessor's
		// watermark, above (a sole member: what is synced here).
		r.commitTo(now, r.chainSynced())
	} else {
		// Pass on what is in flight here now rather than at the next
		// write: after a restart nothing else would (the successor may
		// have acked it to the crashed process), and a successor that has
		// not adopted this version yet asks again in its hello.
		r.forward(now)
	}
	r.checkSynced()
}

// setLearner follows the chain's learner: only the tail feeds one. A tail
// whose learner was just promoted to its successor keeps what the learner
// acknowledged as the successor's, so the log keeps what it may lack.
func (r *replica) setLearner(learner, prevSucc string) {
	switch {
	case r.succ != "":
		if r.feeding && r.succ == r.learner {
			// keep downAcked: the promoted learner's acks so far
		} else if r.succ != prevSucc {
			r.downAcked = r.committed
		}
		r.feeding, r.learner = false, ""
	case learner != r.learner:
		r.learner, r.feeding, r.feedSent = learner, false, 0
	}
}

// leave handles a partition this server is no longer in: its data goes
// (another incarnation copies it afresh if ever placed here again).
func (r *replica) leave() {
	r.failWaiters(ErrChainChanged)
	r.failReads(ErrNotResponsible)
	r.idx, r.pred, r.succ, r.learner = -1, "", "", ""
	r.drop()
}

// probeAfterChange reports whether a chain change calls for a probe: every
// one does. simcanary_narrowprobe puts back the first rule (a member after
// us in the new chain came before us in the one we followed), which misses
// reorders we never saw.
func probeAfterChange(prev, next []string, me string) bool {
	if !canaryNarrowProbe {
		return true
	}
	mine := slices.Index(prev, me)
	if mine < 0 {
		return false
	}
	for _, id := range next[slices.Index(next, me)+1:] {
		if i := slices.Index(prev, id); i >= 0 && i < mine {
			return true
		}
	}
	return false
}

// onlyRemoved reports whether chain ch differs from the members prev
// followed until now only by members taken out (order kept, no learner):
// the one change the ECS makes to a partition while it holds an unsynced
// mark there (ecs/core: a marked partition is frozen but for failover).
// Any other change shows that the ECS cleared the mark. simcanary_reportonce
// puts back the old rule: a report is owed at one chain version only.
func onlyRemoved(prev []string, ch ringmeta.Chain) bool {
	if canaryReportOnce || ch.Learner != "" || len(prev) == 0 {
		return false
	}
	i := 0
	for _, id := range prev {
		if i < len(ch.Members) && ch.Members[i] == id {
			i++
		}
	}
	return i == len(ch.Members)
}
