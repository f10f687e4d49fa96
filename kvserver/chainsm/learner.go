package chainsm

// A learner copies the partition from the tail (DESIGN §4): it asks for a
// snapshot, the tail sends its records as they are at some applied seq and
// from then on forwards every later entry, which the learner buffers until
// the snapshot is in. Once the snapshot and what followed are synced, the
// learner reports ready; the ECS then makes it the chain's tail.

// becomeLearner starts (or restarts) copying the partition.
func (r *replica) becomeLearner(now Mono) {
	r.failWaiters(ErrChainChanged)
	r.failReads(ErrNotResponsible)
	r.idx, r.pred, r.succ, r.learner = -1, "", "", ""
	r.drop()
	r.learning = true
	r.askSnapshot(now)
}

func (r *replica) tailID() string {
	if len(r.members) == 0 {
		return ""
	}
	return r.members[len(r.members)-1]
}

func (r *replica) askSnapshot(now Mono) {
	r.snapAt = now
	r.n.send(Msg{Kind: MsgSnapReq, To: r.tailID(), Part: r.p, Ver: r.ver})
}

func (r *replica) learnerTick(now Mono) {
	cfg := &r.n.cfg
	if !r.installed {
		if now-r.snapAt >= cfg.Retransmit {
			r.askSnapshot(now)
		}
		return
	}
	if len(r.buf) > 0 && now-r.nackAt >= cfg.helloRetry() {
		r.nack(now, r.tailID(), true)
	}
	if now-r.ackAt >= cfg.Retransmit {
		// A heartbeat: a tail that restarted since the snapshot learns
		// that it has a learner to feed.
		r.learnerAck(now)
	}
	if r.readyDone && now-r.repAt >= reportEvery {
		r.repAt = now
		r.n.report(Report{Kind: RepReady, Part: r.p, Ver: r.ver})
	}
}

// onSnapReq sends a snapshot: from the tail to the chain's learner (then
// every entry after it, once synced on the whole chain), or from a member
// to its successor that must copy the partition (startCopy). A copy holds
// only what is synced on every member above it and here: entries travel
// before their syncs, and a crash of the chain may lose what is not, which
// a copy could not give back. So a snapshot waits until everything applied
// here is synced up the chain; meanwhile this member applies nothing new
// (a head sequences nothing; a successor drops updates and asks for them
// again once the snapshot is taken).
func (r *replica) onSnapReq(now Mono, m Msg) {
	toLearner := r.isTail() && m.From == r.learner
	if m.Ver != r.ver || !toLearner && !(r.member() && m.From == r.succ) {
		return
	}
	if r.snapWaits() {
		r.snapFor = m.From
		return
	}
	if toLearner {
		// Entries after the snapshot go to the learner from the log. A
		// learner that asked again (its first snapshot late or lost)
		// installs whichever arrives first, so the log keeps what follows
		// the oldest snapshot sent until the learner acks.
		if !r.feeding {
			r.downAcked = r.applied
		}
		r.feeding, r.feedSent, r.feedAt = true, r.applied, now
	}
	r.n.rd.Snapshots = append(r.n.rd.Snapshots, SnapshotSend{
		To: m.From, Part: r.p, Ver: r.ver, Seq: r.applied, Dedup: r.dedup.records(),
	})
}

// serveDeferredSnapshot sends a deferred snapshot once all applied here is
// synced up the chain, then asks the predecessor for what it dropped.
func (r *replica) serveDeferredSnapshot(now Mono) {
	if to := r.snapFor; to != "" && !r.snapWaits() {
		r.snapFor = ""
		r.onSnapReq(now, Msg{From: to, Ver: r.ver})
		if r.pred != "" {
			r.nackAt = 0
			r.nack(now, r.pred, false)
		}
	}
}

// startCopy: the predecessor cannot resend what this member lacks; copy
// the partition from it. The member stays in the chain, unsynced: it
// serves nothing and its predecessor commits nothing until it caught up.
func (r *replica) startCopy(now Mono, m Msg) {
	// Only a tail copies: its commit point is its own synced seq, so the
	// copy never acks a write the chain below it lacks.
	if !r.member() || m.Ver != r.ver || m.From != r.pred || r.copying || !r.unsynced || r.succ != "" {
		return
	}
	r.failReads(ErrNotResponsible)
	report, marked := r.reportSync, r.marked
	r.drop()
	r.copying, r.unsynced, r.reportSync, r.marked = true, true, report, marked
	r.askCopy(now)
}

func (r *replica) askCopy(now Mono) {
	r.snapAt = now
	r.n.send(Msg{Kind: MsgSnapReq, To: r.pred, Part: r.p, Ver: r.ver})
}

// feed forwards to the learner what was synced on the whole chain since the
// last send: a learner never holds what a crash of the chain may lose.
func (r *replica) feed(now Mono) {
	if !r.feeding || r.copyPoint() <= r.feedSent {
		return
	}
	from := r.feedSent
	r.feedSent, r.feedAt = r.copyPoint(), now
	r.resend(now, r.learner, from, true)
}

func (r *replica) feedTick(now Mono) {
	if r.feeding && r.downAcked < r.feedSent && now-r.feedAt >= r.n.cfg.Retransmit {
		r.feedAt = now
		r.resend(now, r.learner, r.downAcked, true)
	}
}

// onSnapshot installs the tail's snapshot.
func (r *replica) onSnapshot(now Mono, m Msg) {
	copied := r.copying && m.Ver == r.ver && m.From == r.pred
	if !copied && (!r.learning || r.installed || m.Ver != r.ver || m.From != r.tailID()) {
		return
	}
	r.gen++
	r.installed, r.stored, r.ingesting = true, true, true
	r.applied, r.synced, r.committed, r.truncated = m.Seq, 0, m.Seq, m.Seq
	r.log, r.dirty = nil, map[string]uint64{}
	r.dedup = dedupTable{}
	for _, d := range m.Dedup {
		r.dedup.add(d, nil)
	}
	r.n.store(StorageOp{Kind: StIngest, Part: r.p, Seq: m.Seq, Dedup: m.Dedup})
	r.n.toSync = append(r.n.toSync, partSeq{r.p, r.gen, m.Seq})
	if copied {
		r.copying, r.installed = false, false
		r.hello(now) // what followed the snapshot, and the sync
		return
	}
	buf := r.buf
	r.buf = nil
	r.applyLearner(now, buf)
}

// onLearnerUpdate takes entries the tail forwards to this learner.
func (r *replica) onLearnerUpdate(now Mono, m Msg) {
	if !r.learning || m.Ver != r.ver || m.From != r.tailID() {
		return
	}
	if !r.installed {
		if len(r.buf)+len(m.Entries) > r.n.cfg.MaxLearnerBuffer {
			r.buf = nil // the gap after the snapshot is asked for again
			return
		}
		r.buf = append(r.buf, m.Entries...)
		return
	}
	r.applyLearner(now, m.Entries)
}

func (r *replica) applyLearner(now Mono, es []*Entry) {
	for _, e := range es {
		switch {
		case e.Seq <= r.applied:
			continue
		case e.Seq > r.applied+1:
			r.nack(now, r.tailID(), true)
			return
		}
		r.appendEntry(e, false)
	}
}

// trimLearner: a learner serves nothing, so what it synced is as good as
// committed for it.
func (r *replica) trimLearner() {
	if r.synced <= r.committed {
		return
	}
	for _, le := range r.log {
		if le.e.Seq > r.synced {
			break
		}
		for _, o := range le.e.Ops {
			if k := dirtyKey(o.NS, o.Key); r.dirty[k] <= r.synced {
				delete(r.dirty, k)
			}
		}
		r.dedup.detach(le)
	}
	r.committed = r.synced
	r.trim()
}

// resumeFeed answers a learner this tail does not feed (it restarted since
// it sent the snapshot): from the log when it reaches back to what the
// learner holds, else the learner copies the partition again.
func (r *replica) resumeFeed(now Mono, held uint64) {
	if held < r.truncated || held > r.applied {
		r.n.send(Msg{Kind: MsgSync, To: r.learner, Part: r.p, Ver: r.ver, Learner: true})
		return
	}
	r.feeding, r.downAcked, r.feedSent, r.feedAt = true, held, held, now
	r.feed(now)
}

// onResnapshot: the tail cannot feed this learner from its log; copy again.
func (r *replica) onResnapshot(now Mono, m Msg) {
	if !r.learning || !r.installed || m.Ver != r.ver || m.From != r.tailID() {
		return
	}
	r.becomeLearner(now)
}

func (r *replica) learnerAck(now Mono) {
	r.ackAt = now
	r.n.send(Msg{Kind: MsgAck, To: r.tailID(), Part: r.p, Ver: r.ver, Seq: r.synced, Learner: true})
}

// copyPoint is how far a copy of this member (snapshot or feed) may reach:
// what is synced here and on every member above.
func (r *replica) copyPoint() uint64 {
	if canarySnapUnsynced {
		return r.synced
	}
	return r.chainSynced()
}

// snapWaits reports whether a snapshot must wait for what is applied here
// to sync up the chain (onSnapReq).
func (r *replica) snapWaits() bool {
	if canarySnapUnsynced && !r.isHead() {
		return false
	}
	return r.applied != r.copyPoint()
}
