package chainsm

import "slices"

// PartInfo is a partition's state as the shell reports it (digests,
// metrics).
type PartInfo struct {
	Member, Learner, Head, Tail bool
	Ver, Applied, Synced        uint64
	Committed                   uint64
	InFlight                    int   // entries applied here, not yet committed
	OldestWallMs                int64 // head's wall clock of the oldest in flight
	// Waiting says what holds back the partition's writes, if anything:
	// "probe" (a restarted member asks its successor for what it holds),
	// "snapshot" (a copy waits for what is applied to sync up the chain).
	Waiting string
	// Members is the chain this member follows (Ver).
	Members []string
	// Unsynced: a promoted member whose hello with its predecessor has not
	// ended; it may lack writes the old tail committed.
	Unsynced bool
}

// Stats counts what a healthy chain seldom needs: resends and dropped
// updates. The shell exports them as metrics.
type Stats struct {
	Resent     uint64 // entries sent again (retransmit timeout, nack, chain change)
	DroppedGap uint64 // incoming entries dropped after a missing seq (and nacked)
	DroppedVer uint64 // incoming entries dropped: another chain version or sender
	PriorReads uint64 // tail reads answered with the last committed record of a key with a write in flight
}

// Stats returns the node's counters since it started.
func (n *Node) Stats() Stats { return n.stats }

// Info returns partition p's state; false when the node has none.
func (n *Node) Info(p int) (PartInfo, bool) {
	r := n.lookup(p)
	if r == nil {
		return PartInfo{}, false
	}
	in := PartInfo{Member: r.member(), Learner: r.learning, Head: r.isHead(), Tail: r.isTail(),
		Ver: r.ver, Applied: r.applied, Synced: r.synced, Committed: r.committed, Members: slices.Clone(r.members),
		Unsynced: r.unsynced}
	switch {
	case !r.reconciled:
		in.Waiting = "probe"
	case r.snapFor != "":
		in.Waiting = "snapshot for " + r.snapFor
	}
	for _, le := range r.log {
		if le.e.Seq > r.committed {
			if in.InFlight == 0 {
				in.OldestWallMs = le.e.WallMs
			}
			in.InFlight++
		}
	}
	return in, true
}

// Learning reports whether p waits for a snapshot at chain version ver (a
// learner, or a member copying from its predecessor): the shell may write
// snapshot records for it.
func (n *Node) Learning(p int, ver uint64) bool {
	r := n.lookup(p)
	return r != nil && (r.learning && !r.installed || r.copying) && r.ver == ver
}

// Deferred reports whether partition p waits to take a snapshot for to
// until what it applied is synced up the chain (learner.go).
func (n *Node) Deferred(p int, to string) bool {
	r := n.lookup(p)
	return r != nil && to != "" && r.snapFor == to
}
