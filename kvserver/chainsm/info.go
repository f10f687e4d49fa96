package chainsm

// PartInfo is a partition's state as the shell reports it (digests,
// metrics).
type PartInfo struct {
	Member, Learner, Head, Tail bool
	Ver, Applied, Synced        uint64
	Committed                   uint64
	InFlight                    int   // entries applied here, not yet committed
	OldestWallMs                int64 // head's wall clock of the oldest in flight
}

// Info returns partition p's state; false when the node has none.
func (n *Node) Info(p int) (PartInfo, bool) {
	r := n.lookup(p)
	if r == nil {
		return PartInfo{}, false
	}
	in := PartInfo{Member: r.member(), Learner: r.learning, Head: r.isHead(), Tail: r.isTail(),
		Ver: r.ver, Applied: r.applied, Synced: r.synced, Committed: r.committed}
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
