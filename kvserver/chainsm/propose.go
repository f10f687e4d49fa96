package chainsm

import (
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Proposal is a client write at the head.
type Proposal struct {
	Token  uint64       // the shell's handle for the answer
	Ver    uint64       // chain version the client routed by; 0 = any
	ID     ReqID        // zero for internal writes
	Ops    []storage.Op // expiries already absolute
	WallMs int64        // the head's wall clock now
}

// Propose starts a client write at the head of partition p. The answer
// comes later through Ready.Answers under pr.Token, once the write is
// synced on every member of the chain; an error here is the answer now.
//
// A retry of a write this partition already sequenced (same ID) is not
// applied again: it gets the first attempt's answer once that commits. The
// same ID with other ops (keys, values, kinds) is refused (ErrIDReused).
func (n *Node) Propose(now Mono, p int, pr Proposal) error {
	r := n.lookup(p)
	switch {
	case n.stopped:
		return ErrStopped
	case r == nil || !r.isHead() || pr.Ver != 0 && pr.Ver != r.ver:
		return ErrNotResponsible
	case r.unsynced:
		return ErrNotReady // never: the ECS makes no unsynced member head
	case !r.reconciled:
		return ErrNotReady // restarted: the successor may hold more (probe.go)
	case r.snapFor != "":
		return ErrNotReady // a snapshot waits for the sync (learner.go)
	}
	if v, ok := r.dedup.get(pr.ID); ok && pr.ID != (ReqID{}) {
		if v.rec.Sum != 0 && v.rec.Sum != storage.OpsSum(pr.Ops) {
			return ErrIDReused
		}
		r.duplicate(now, pr.Token, v)
		n.check()
		return nil
	}
	e := &Entry{Seq: r.applied + 1, Ops: pr.Ops, ID: pr.ID, WallMs: pr.WallMs, Sum: storage.OpsSum(pr.Ops)}
	le := r.appendEntry(e, true)
	le.waiters = append(le.waiters, pr.Token)
	r.forward(now) // before the sync here: durability overlaps along the chain
	n.check()
	return nil
}

// duplicate answers a retried write: with the first answer once its seq is
// committed (and the holdback is over), else when its entry commits.
func (r *replica) duplicate(now Mono, token uint64, v dedupVal) {
	if v.rec.Seq <= r.committed {
		h := heldAnswer{token: token, st: v.rec.Status, seq: v.rec.Seq, res: v.rec.Res}
		if v.le != nil && v.le.statusKnown {
			h = answerOf(token, v.le)
		}
		if canaryDupHoldback { // simcanary_dupholdback: answered at once, holdback or not
			r.n.answerWrite(h)
			return
		}
		r.held = append(r.held, h)
		r.flushHeld(now)
		return
	}
	le := r.find(v.rec.Seq)
	if le == nil {
		// Sequenced above what this head holds: cannot be (the log covers
		// everything above committed), but never apply it twice.
		r.n.answer(token, 0, ErrChainChanged)
		return
	}
	le.waiters = append(le.waiters, token)
}

// flushHeld answers the committed writes once the holdback is over (a
// sole member commits on its own, so it waits here rather than for acks).
func (r *replica) flushHeld(now Mono) {
	if len(r.held) == 0 || now < r.holdUntil {
		return
	}
	for _, h := range r.held {
		r.n.answerWrite(h)
	}
	r.held = r.held[:0]
}

// answerOf is the answer a committed entry gives the writer token.
func answerOf(token uint64, le *logEntry) heldAnswer {
	return heldAnswer{token: token, st: le.e.Status, seq: le.e.Seq, res: le.e.Res}
}
