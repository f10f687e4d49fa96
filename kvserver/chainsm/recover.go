package chainsm

import (
	"fmt"
)

// Recovered is what storage kept of a partition across a restart.
type Recovered struct {
	Applied   uint64
	Ver       uint64 // chain version followed (StVersion)
	Epoch     uint64
	Unsynced  bool
	Truncated uint64
	// Log holds the entries Truncated < seq <= Applied, in order: those not
	// known to be committed when the server stopped.
	Log   []*Entry
	Dedup []DedupRecord
}

// Recover loads partition p's state after a restart, before the first
// SetRing. Everything storage kept is synced now. Nothing is served until
// a ring is adopted: the partition resends its log to its successor after
// the successor's hello, and the holdback of a first adoption applies.
func (n *Node) Recover(p int, rec Recovered) error {
	if n.epoch != 0 {
		return fmt.Errorf("chainsm: recover partition %d after a ring was adopted", p)
	}
	want := rec.Applied - rec.Truncated
	if rec.Truncated > rec.Applied || uint64(len(rec.Log)) != want {
		return fmt.Errorf("chainsm: partition %d: log of %d entries for seqs %d..%d", p, len(rec.Log), rec.Truncated+1, rec.Applied)
	}
	for i, e := range rec.Log {
		if e.Seq != rec.Truncated+1+uint64(i) {
			return fmt.Errorf("chainsm: partition %d: log entry %d has seq %d", p, i, e.Seq)
		}
	}
	if canaryRestart { // simcanary_restart: the log and dedup table were memory-only
		rec.Truncated, rec.Log, rec.Dedup = rec.Applied, nil, nil
	}
	r := n.part(p)
	if r == nil {
		return fmt.Errorf("chainsm: partition %d out of range", p)
	}
	*r = *newReplica(n, p)
	r.stored = true
	r.ver, r.reportSync, r.marked = rec.Ver, rec.Unsynced, rec.Unsynced
	r.applied, r.synced, r.committed, r.truncated = rec.Applied, rec.Applied, rec.Truncated, rec.Truncated
	for _, d := range rec.Dedup {
		r.dedup.add(d, nil)
	}
	for _, e := range rec.Log {
		le := &logEntry{e: e, statusKnown: true}
		r.log = append(r.log, le)
		for _, o := range e.Ops {
			r.dirty[dirtyKey(o.NS, o.Key)] = e.Seq
		}
		r.dedup.add(DedupRecord{ID: e.ID, Seq: e.Seq, Status: e.Status, WallMs: e.WallMs, Sum: e.sum(), Res: e.Res}, le)
	}
	r.downAcked = rec.Truncated
	return nil
}
