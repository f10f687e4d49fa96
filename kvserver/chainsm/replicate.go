package chainsm

// Step hands the node one peer message.
func (n *Node) Step(now Mono, m Msg) {
	if n.stopped {
		return
	}
	switch m.Kind {
	case MsgLeaseReq:
		n.grantLease(now, m)
	case MsgLeaseResp:
		n.leaseGranted(m)
	default:
		r := n.lookup(m.Part)
		if r == nil || !r.known {
			if m.Kind == MsgUpdate {
				n.stats.DroppedVer += uint64(len(m.Entries))
			}
			return
		}
		switch m.Kind {
		case MsgUpdate:
			if m.Learner {
				r.onLearnerUpdate(now, m)
			} else {
				r.onUpdate(now, m)
			}
		case MsgAck:
			r.onAck(now, m)
		case MsgNack:
			r.onNack(now, m)
		case MsgSync:
			if m.Learner {
				r.onResnapshot(now, m)
			} else {
				r.onSync(now, m)
			}
		case MsgSnapReq:
			r.onSnapReq(now, m)
		case MsgSnapshot:
			r.onSnapshot(now, m)
		case MsgProbe:
			r.onProbe(now, m)
		case MsgProbeResp:
			r.onProbeResp(now, m)
		}
	}
	n.check()
}

// onSynced runs when the WAL sync covered more of this partition: the
// tail may commit more, another member passes its watermark down. Entries
// travel before they are synced (durability overlaps along the chain);
// acks, and so commits, answers and reads, wait for every member's sync.
func (r *replica) onSynced(now Mono) {
	switch {
	case r.learning:
		r.learnerAck(now)
		if r.installed && !r.readyDone {
			r.readyDone, r.repAt = true, now
			r.n.report(Report{Kind: RepReady, Part: r.p, Ver: r.ver})
		}
		r.trimLearner()
		return
	case !r.member():
		return
	}
	if r.copying {
		return
	}
	if r.succ == "" {
		r.commitTo(now, r.chainSynced())
	} else {
		r.forward(now)
	}
	r.feed(now)
	r.serveDeferredSnapshot(now)
	r.checkSynced()
}

// forward sends the successor the entries it has not been sent yet, synced
// here or not, and the watermark and the commit point when they rose. The
// commit point is how a middle member learns of commits at once, for its
// nearest-replica reads: the relayed acks from below come with the tick
// (ack), and this message goes to the server the step sends to anyway.
func (r *replica) forward(now Mono) {
	if r.succ == "" {
		return
	}
	var out []*Entry
	for _, le := range r.log {
		if !le.sent && le.e.Seq > r.committed {
			le.sent, le.sentAt = true, now
			out = append(out, le.e)
		}
	}
	if w := r.chainSynced(); len(out) > 0 || w > r.sentSynced || r.committed > r.sentCommit {
		r.sentSynced = max(r.sentSynced, w)
		r.sentCommit = max(r.sentCommit, r.committed)
		r.n.send(Msg{Kind: MsgUpdate, To: r.succ, Part: r.p, Ver: r.ver, Seq: w, Trunc: r.committed, Entries: out})
	}
}

// resend sends again every entry after seq that is still in the log (to a
// learner: every synced one), with the watermark, to the successor (or,
// with learner, to the learner). The log keeps everything the receiver has
// not acknowledged, so a request from below the truncation point is an old
// one overtaken by the receiver's ack: it holds those entries already.
func (r *replica) resend(now Mono, to string, after uint64, learner bool) {
	var out []*Entry
	for _, le := range r.log {
		if le.e.Seq <= after {
			if !learner && le.e.Seq > r.committed && !le.sent {
				// The receiver holds it already; its ack is still to come,
				// and retransmission covers that ack's loss.
				le.sent, le.sentAt = true, now
			}
			continue
		}
		if learner && le.e.Seq > r.copyPoint() {
			break
		}
		if !learner {
			le.sent, le.sentAt = true, now
		}
		out = append(out, le.e)
	}
	r.n.stats.Resent += uint64(len(out))
	switch {
	case learner && len(out) > 0:
		r.n.send(Msg{Kind: MsgUpdate, To: to, Part: r.p, Ver: r.ver, Entries: out, Learner: true})
	case !learner:
		w := r.chainSynced()
		r.sentSynced = max(r.sentSynced, w)
		r.sentCommit = max(r.sentCommit, r.committed)
		r.n.send(Msg{Kind: MsgUpdate, To: to, Part: r.p, Ver: r.ver, Seq: w, Trunc: r.committed, Entries: out})
	}
}

// onUpdate applies entries from the predecessor, in seq order.
func (r *replica) onUpdate(now Mono, m Msg) {
	if !r.member() || m.Ver != r.ver || m.From != r.pred {
		r.n.stats.DroppedVer += uint64(len(m.Entries))
		return // stale sender, or our ring is behind: the sender retries
	}
	r.upSynced = max(r.upSynced, m.Seq)
apply:
	for i, e := range m.Entries {
		if r.snapFor != "" {
			break // a snapshot waits for what is applied to sync (learner.go)
		}
		switch {
		case e.Seq <= r.applied:
			// A retransmission: our ack was lost or is still to come.
			r.ackAgain = true
			continue
		case e.Seq > r.applied+1:
			r.n.stats.DroppedGap += uint64(len(m.Entries) - i)
			r.gapTo = max(r.gapTo, e.Seq) // the tick asks again if this nack is held back
			r.nack(now, r.pred, false)
			break apply
		}
		r.appendEntry(e, false)
	}
	if r.succ == "" {
		r.commitTo(now, r.chainSynced())
		r.feed(now)
	} else {
		// The predecessor's commit point, learnt from the tail at this
		// version: synced here already, as the tail committed it.
		r.commitTo(now, m.Trunc)
		r.forward(now)
	}
	r.serveDeferredSnapshot(now)
	r.sendAck(now)
}

// nack asks the predecessor (or tail) for everything after applied, at
// most once per hello interval.
func (r *replica) nack(now Mono, to string, learner bool) {
	if now-r.nackAt < r.n.cfg.helloRetry() && r.nackAt != 0 {
		return
	}
	r.nackAt = now
	r.n.send(Msg{Kind: MsgNack, To: to, Part: r.p, Ver: r.ver, Seq: r.applied, Learner: learner})
}

// onNack resends what the successor (or learner) lacks, then tells it how
// far it must apply to hold all this member holds.
func (r *replica) onNack(now Mono, m Msg) {
	if m.Ver != r.ver {
		return
	}
	switch {
	case m.Learner && r.feeding && m.From == r.learner:
		r.resend(now, m.From, m.Seq, true)
	case !m.Learner && r.member() && m.From == r.succ:
		r.resend(now, m.From, m.Seq, false)
		// Trunc: where the log starts; a successor that holds less
		// cannot catch up from here (see onSync).
		r.n.send(Msg{Kind: MsgSync, To: m.From, Part: r.p, Ver: r.ver, Seq: r.synced, Trunc: r.truncated})
	}
}

// onSync ends the hello: once applied up to m.Seq this member holds
// everything its predecessor held when it answered.
func (r *replica) onSync(now Mono, m Msg) {
	if !r.member() || m.Ver != r.ver || m.From != r.pred {
		return
	}
	if r.applied < m.Trunc && r.unsynced && r.succ == "" {
		// The predecessor's log no longer reaches back to what this tail
		// holds (a promoted tail whose old predecessor left before it
		// caught up): copy the partition from the predecessor instead.
		r.startCopy(now, m)
		return
	}
	r.helloDone = true
	r.syncTo = max(r.syncTo, m.Seq)
	// Whatever an earlier chain version committed is synced on the
	// predecessor (priorFloor).
	r.priorFloor = max(r.priorFloor, m.Seq)
	// The predecessor follows our version now: an ack sent before it did
	// was dropped, so send the commit point again.
	r.ackAgain = true
	r.sendAck(now)
	if r.applied < m.Seq {
		r.nack(now, r.pred, false) // resends lost or reordered: ask again
	}
	r.checkSynced()
}

// checkSynced ends the hello once this member holds, synced, all its
// predecessor held, and reports it when the ECS may be waiting for that.
func (r *replica) checkSynced() {
	if !r.member() || !r.helloDone || r.synced < r.syncTo {
		return
	}
	r.unsynced = false
	if r.reportSync {
		// The stored flag stays until the next chain version: the report
		// may not reach etcd before a crash, and a restart reports again.
		r.reportSync = false
		r.n.report(Report{Kind: RepSynced, Part: r.p, Ver: r.ver})
		r.repLeft = reportRepeats
	}
}

// tick runs partition p's timers.
func (r *replica) tick(now Mono) {
	cfg := &r.n.cfg
	switch {
	case r.learning:
		r.learnerTick(now)
		return
	case !r.member():
		return
	}
	if r.copying {
		if now-r.snapAt >= cfg.Retransmit {
			r.askCopy(now)
		}
		return
	}
	if r.pred != "" && !r.helloDone && now-r.helloAt >= cfg.helloRetry() {
		r.hello(now)
	}
	if r.pred != "" && r.applied < r.gapTo {
		r.nack(now, r.pred, false)
	}
	r.probeTick(now)
	r.upLagTick(now)
	// A deferred snapshot whose wait ended with no sync (a chain change
	// made this member head) would otherwise wait forever.
	r.serveDeferredSnapshot(now)
	if r.succ != "" {
		for _, le := range r.log {
			if le.e.Seq <= r.committed {
				continue
			}
			if le.sent && now-le.sentAt >= cfg.Retransmit {
				r.resend(now, r.succ, r.committed, false)
			}
			break
		}
	}
	r.feedTick(now)
	r.ack(now, true)
	r.flushHeld(now)
	if r.repLeft > 0 && now-r.repAt >= reportEvery && !r.unsynced {
		r.repAt = now
		r.repLeft--
		r.n.report(Report{Kind: RepSynced, Part: r.p, Ver: r.ver})
	}
}

// upLagTick asks the predecessor for its watermark again when it has
// stood still below what is synced here for a retransmit interval. Only a
// rise sends it (forward), so a lost one is not sent again; then nothing
// below would commit what only this member holds the watermark of, and a
// new tail would never commit what an old tail committed before it. Under
// load the watermark keeps rising, and nothing is asked.
func (r *replica) upLagTick(now Mono) {
	if r.pred == "" || !r.helloDone || r.upSynced >= r.synced {
		r.upLagAt = 0
		return
	}
	switch {
	case r.upLagAt == 0 || r.upSynced != r.upLagSeen:
		r.upLagAt, r.upLagSeen = now, r.upSynced
	case now-r.upLagAt >= r.n.cfg.Retransmit:
		r.upLagAt = now
		r.nack(now, r.pred, false) // answered with a resend: the watermark, and nothing we hold
	}
}

// A report is repeated reportRepeats times, every reportEvery; a learner's
// ready report as long as it waits for its promotion.
const (
	reportEvery   = Mono(2e9)
	reportRepeats = 5
)

// hello greets the predecessor after adopting a chain version: a nack with
// our applied seq, answered by resends and a sync.
func (r *replica) hello(now Mono) {
	r.helloAt = now
	r.nackAt = now
	r.n.send(Msg{Kind: MsgNack, To: r.pred, Part: r.p, Ver: r.ver, Seq: r.applied, Hello: true})
}
