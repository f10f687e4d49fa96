package chainsm

// Probes: reconciling a member with those below it.
//
// Down a chain every member holds at least what its successor holds, as
// long as the chain keeps its order and its members their memory. Two
// things break that. A member forwards entries before its own WAL sync
// ends, so a crash may lose entries its successor already holds; and a
// reorder (role balance) may put a member below one that had entries it
// never got. A head that sequenced from its own applied seq then would
// reuse seqs held below it. So after a start (crash or not: it did not
// follow the chain until now) and after every chain change (a reorder it
// never saw, or one during which a member below got entries from above,
// leaves no trace in the order it sees), a member probes its successor
// before it sequences (head) or answers its own predecessor's probe
// (middle): the successor sends back every entry it
// holds beyond the probe's seq, and the member applies them as its own.
// The successor still has them in its log: a commit needs every member's
// sync, so what the prober lacks was not committed, and logs keep every
// uncommitted entry. The longest history in the chain wins.

// probe asks the successor for what it holds beyond our applied seq.
func (r *replica) probe(now Mono) {
	r.probeAt = now
	r.n.send(Msg{Kind: MsgProbe, To: r.succ, Part: r.p, Ver: r.ver, Seq: r.applied})
}

// onProbe answers the predecessor's probe, once this member itself holds
// everything its own successor holds.
func (r *replica) onProbe(now Mono, m Msg) {
	if !r.member() || m.Ver != r.ver || m.From != r.pred {
		return // the predecessor probes again
	}
	if !r.reconciled {
		r.probedBy = &m // answered once our own probe is
		return
	}
	if m.Seq < r.truncated {
		// A stale probe, delayed on the way: the predecessor holds every
		// committed entry (see above), so it has applied more since and
		// probes again if it still needs to.
		return
	}
	var out []*Entry
	for _, le := range r.log {
		if le.e.Seq > m.Seq {
			out = append(out, le.e)
		}
	}
	r.n.send(Msg{Kind: MsgProbeResp, To: m.From, Part: r.p, Ver: r.ver, Seq: r.applied, Entries: out})
}

// onProbeResp applies what the successor held beyond our applied seq; they
// are in flight again, as if this member had forwarded them.
func (r *replica) onProbeResp(now Mono, m Msg) {
	if !r.member() || m.Ver != r.ver || m.From != r.succ || r.reconciled {
		return
	}
	for _, e := range m.Entries {
		if e.Seq != r.applied+1 {
			continue
		}
		le := r.appendEntry(e, false)
		le.sent, le.sentAt = true, now
	}
	if r.applied >= m.Seq {
		r.reconciled = true
		if pm := r.probedBy; pm != nil {
			r.probedBy = nil
			r.onProbe(now, *pm)
		}
	}
}

// probeTick repeats an unanswered probe.
func (r *replica) probeTick(now Mono) {
	if !r.reconciled && r.succ != "" && now-r.probeAt >= r.n.cfg.helloRetry() {
		r.probe(now)
	}
}
