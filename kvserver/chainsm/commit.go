package chainsm

import (
	"slices"

	"github.com/ecskv/ecskv/kvserver/storage"
)

// commitTo raises the commit point to c (bounded by what is synced here):
// entries up to it are synced on every member of the chain. Their writers
// are answered (head), waiting reads served (tail), the log trimmed as far
// as every consumer allows, and the predecessor told.
func (r *replica) commitTo(now Mono, c uint64) {
	c = min(c, r.synced)
	if c <= r.committed {
		return
	}
	var done []*Entry
	for _, le := range r.log {
		s := le.e.Seq
		if s <= r.committed {
			continue
		}
		if s > c {
			break
		}
		for _, o := range le.e.Ops {
			k := dirtyKey(o.NS, o.Key)
			switch {
			case r.dirty[k] <= c:
				delete(r.dirty, k)
				delete(r.prior, k)
			case r.isTail() && o.Kind != storage.OpNone:
				// Still in flight by a later write: this is now the key's
				// last committed record.
				if r.prior == nil {
					r.prior = map[string]storage.Record{}
				}
				r.prior[k] = committedRecord(le.e, o)
			}
		}
		for _, t := range le.waiters {
			r.held = append(r.held, answerOf(t, le))
		}
		le.waiters = nil
		r.dedup.detach(le)
		done = append(done, le.e)
	}
	if len(done) > 0 {
		r.n.rd.Committed = append(r.n.rd.Committed, Committed{Part: r.p, Entries: done})
	}
	r.committed = c
	r.flushHeld(now)
	r.serveReads()
	r.trim()
	r.sendAck(now)
	if r.succ != "" && r.member() && !r.copying {
		r.forward(now)
	}
}

// keepFrom is the highest seq whose log record may go: committed, and held
// by whoever may still ask for a resend (successor or learner).
func (r *replica) keepFrom() uint64 {
	k := r.committed
	if r.succ != "" || r.feeding || r.learner != "" {
		k = min(k, r.downAcked)
	}
	return k
}

// trim drops log entries nobody needs any more, in memory and, in batches,
// in storage.
func (r *replica) trim() {
	k := r.keepFrom()
	i := 0
	for i < len(r.log) && r.log[i].e.Seq <= k {
		i++
	}
	if i == 0 {
		return
	}
	r.log = r.log[i:]
	if len(r.log) == 0 {
		r.log = nil
	}
	if k > r.truncated {
		r.truncated = k
		r.n.store(StorageOp{Kind: StTruncate, Part: r.p, Seq: k})
	}
}

// sendAck tells the predecessor how far the chain from here down holds
// everything. The tail commits for the whole chain, so its acks wait for
// the holdback: no write of a chain version that removed a member commits
// while that member may still serve reads under its old lease. (Commits
// need no lease of their own: a write commits only through the tail of
// the chain it was sequenced in, and a member that left a chain drops that
// chain's updates, so two versions never both commit.)
func (r *replica) sendAck(now Mono) { r.ack(now, false) }

// ack sends the acks due; tick: the node's timer, which also sends those
// held back.
//
// The tail's commit point holds for the whole chain (every member synced
// it), so the members above its predecessor take it straight from the
// tail: a write's answer waits for one hop up, not one per member. The
// acks relayed up the chain (a middle member's, and the tail's to a
// predecessor that is not the head) then carry nothing a write waits for:
// they let members above trim their logs and learn commits the direct
// ack may have lost. They go with the tick, or at once when a resend or a
// hello asks for them (ackAgain). Under load a server's steps so send to
// two servers (the next one, and the head of the chains it ends), and in a
// cluster of three to one, instead of also to the one before it.
func (r *replica) ack(now Mono, tick bool) {
	if r.pred == "" || !r.member() {
		return
	}
	if r.succ == "" {
		if now < r.holdUntil {
			return // the tick tries again
		}
		if r.committed > r.directUp || r.ackAgain {
			r.directUp = r.committed
			for _, id := range r.members[:max(r.idx-1, 0)] {
				r.n.send(Msg{Kind: MsgAck, To: id, Part: r.p, Ver: r.ver, Seq: r.committed})
			}
		}
	}
	if r.committed <= r.ackedUp && !r.ackAgain {
		return
	}
	if !tick && !r.ackAgain && (r.succ != "" || r.idx >= 2) {
		return // relayed: the tick sends it
	}
	r.ackAgain = false
	r.ackedUp = r.committed
	r.n.send(Msg{Kind: MsgAck, To: r.pred, Part: r.p, Ver: r.ver, Seq: r.committed})
}

// below reports whether id follows this member in its chain.
func (r *replica) below(id string) bool {
	i := slices.Index(r.members, id)
	return i > r.idx && r.idx >= 0
}

// onAck takes "everything <= seq is synced from the sender down" from the
// successor, or from the learner for the feed.
func (r *replica) onAck(now Mono, m Msg) {
	if m.Ver != r.ver {
		return
	}
	switch {
	case m.Learner && r.feeding && m.From == r.learner:
		r.downAcked = max(r.downAcked, m.Seq)
		r.trim()
	case m.Learner && r.isTail() && m.From == r.learner:
		r.resumeFeed(now, m.Seq)
	case !m.Learner && r.member() && m.From == r.succ:
		r.downAcked = max(r.downAcked, m.Seq)
		r.commitTo(now, m.Seq)
		r.trim()
	case !m.Learner && r.member() && r.below(m.From):
		// The tail's direct ack (sendAck): a commit point only; what the
		// successor holds is still learnt from its own ack.
		r.commitTo(now, m.Seq)
	}
}

// committedRecord is the record op of e leaves its key with (Seq 0: none).
func committedRecord(e *Entry, o storage.Op) storage.Record {
	if o.Kind != storage.OpPut {
		return storage.Record{}
	}
	return storage.Record{Seq: e.Seq, ExpiryMs: o.ExpiryMs, Value: o.Value}
}
