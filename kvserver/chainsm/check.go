package chainsm

import "fmt"

// Violation returns the first invariant violation found (Config.Check).
func (n *Node) Violation() error { return n.violation }

// check verifies the node's invariants after an input when Config.Check is
// set; the first violation is kept for Violation.
func (n *Node) check() {
	if !n.cfg.Check || n.violation != nil {
		return
	}
	for _, r := range n.parts {
		if r == nil {
			continue
		}
		if err := r.check(); err != nil {
			n.violation = fmt.Errorf("%s partition %d: %w", n.cfg.ID, r.p, err)
			return
		}
	}
}

func (r *replica) check() error {
	if r.learning || r.ingesting || r.copying {
		return nil // a copy in progress: its seqs are set by the snapshot
	}
	if !(r.committed <= r.synced && r.synced <= r.applied) {
		return fmt.Errorf("committed %d, synced %d, applied %d out of order", r.committed, r.synced, r.applied)
	}
	if r.truncated > r.applied {
		return fmt.Errorf("truncated %d above applied %d", r.truncated, r.applied)
	}
	if r.truncated > r.committed {
		return fmt.Errorf("truncated %d above committed %d", r.truncated, r.committed)
	}
	for i, le := range r.log {
		if i > 0 && le.e.Seq != r.log[i-1].e.Seq+1 {
			return fmt.Errorf("log not contiguous at %d", le.e.Seq)
		}
	}
	if len(r.log) == 0 && r.truncated != r.applied {
		return fmt.Errorf("empty log, truncated %d, applied %d", r.truncated, r.applied)
	}
	if len(r.log) > 0 && r.log[0].e.Seq != r.truncated+1 {
		return fmt.Errorf("log starts at %d, truncated %d", r.log[0].e.Seq, r.truncated)
	}
	if len(r.log) > 0 && r.log[len(r.log)-1].e.Seq != r.applied {
		return fmt.Errorf("log ends at %d, applied %d", r.log[len(r.log)-1].e.Seq, r.applied)
	}
	for k := range r.prior {
		if !r.isTail() || r.dirty[k] <= r.committed {
			return fmt.Errorf("prior record of %q kept with no write in flight (tail %v)", k, r.isTail())
		}
	}
	if r.ackedUp > r.synced && r.member() {
		return fmt.Errorf("acked %d above synced %d", r.ackedUp, r.synced)
	}
	return nil
}
