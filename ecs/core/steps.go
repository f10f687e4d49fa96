package core

import (
	"fmt"
	"slices"
)

// Promote is step (c): the learner id, which reported ready at chain
// version ready, becomes the tail, marked unsynced at the new version in the
// same step. It refuses (false) a report that does not match the chain (a
// stale one: the chain moved on) and a frozen partition: a member that syncs
// from an unsynced predecessor would learn nothing by catching up with it.
func Promote(pt Partition, id string, ready uint64) (Partition, bool) {
	ch := pt.Chain
	if id == "" || ch.Learner != id || ch.Version != ready || ch.Index(id) >= 0 || pt.Frozen() {
		return pt, false
	}
	out := pt.clone()
	out.Chain.Members = append(out.Chain.Members, id)
	out.Chain.Learner = ""
	out.Chain.Version++
	out.Unsynced = append(out.Unsynced, Mark{ID: id, Version: out.Chain.Version})
	return out, true
}

// AddLearner is step (b): id starts copying the partition from the tail.
func AddLearner(pt Partition, id string) (Partition, error) {
	switch {
	case pt.Frozen():
		return pt, ErrFrozen
	case pt.Chain.Learner != "":
		return pt, ErrLearnerBusy
	case id == "" || pt.Chain.Index(id) >= 0:
		return pt, fmt.Errorf("learner %q: %w", id, ErrMember)
	case len(pt.Chain.Members) == 0:
		return pt, ErrLastMember // nothing to copy from
	}
	out := pt.clone()
	out.Chain.Learner = id
	out.Chain.Version++
	return out, nil
}

// Shrink is step (d): the planned leavers leave a chain whose members are
// all synced. So in an R=1 move [A] -> [A,B] -> [B], A leaves only once B
// reported synced.
func Shrink(pt Partition, leavers []string) (Partition, error) {
	switch {
	case pt.Frozen():
		return pt, ErrFrozen
	case pt.Chain.Learner != "":
		return pt, ErrLearnerBusy // the learner's ready key names this version
	}
	for _, id := range leavers {
		if pt.Chain.Index(id) < 0 {
			return pt, fmt.Errorf("leaver %q: %w", id, ErrNotMember)
		}
	}
	out := pt.clone()
	out.Chain.Members = slices.DeleteFunc(out.Chain.Members, func(m string) bool { return slices.Contains(leavers, m) })
	if len(out.Chain.Members) == 0 {
		return pt, ErrLastMember
	}
	if changed(pt.Chain, out.Chain) {
		out.Chain.Version++
	}
	return out, nil
}

// Clear takes a member's report that at chain version v it held everything
// its predecessor had committed, and drops its mark when the report covers
// it: id is still a member, marked at a version no later than v, v is no
// later than the chain's, and its predecessor is synced (else it caught up
// with a member that may itself lack writes). It reports whether the mark
// went; the chain itself does not change.
func Clear(pt Partition, id string, v uint64) (Partition, bool) {
	m, ok := pt.Marked(id)
	i := pt.Chain.Index(id)
	if !ok || i <= 0 || v < m.Version || v > pt.Chain.Version || !pt.Synced(pt.Chain.Members[i-1]) {
		return pt, false
	}
	out := pt.clone()
	out.Unsynced = slices.DeleteFunc(out.Unsynced, func(x Mark) bool { return x.ID == id })
	if len(out.Unsynced) == 0 {
		out.Unsynced = nil
	}
	return out, true
}

// Reorder gives a chain's members a new order (role balance: heads and
// tails spread over the servers), without copying data. It refuses a
// frozen partition (an unsynced member must keep its predecessor until it
// reported its sync, and never becomes head), one with a learner (its
// ready key names this version) and an order of other servers. The
// kvservers take it on like any chain change; a member whose successors
// now include one that came before it takes back what that one holds
// before it sequences (kvserver/chainsm probe.go).
func Reorder(pt Partition, order []string) (Partition, error) {
	switch {
	case pt.Frozen():
		return pt, ErrFrozen
	case pt.Chain.Learner != "":
		return pt, ErrLearnerBusy
	case len(order) != len(pt.Chain.Members):
		return pt, fmt.Errorf("order %v of chain %v: %w", order, pt.Chain.Members, ErrNotMember)
	}
	for i, id := range order {
		if pt.Chain.Index(id) < 0 || slices.Contains(order[:i], id) {
			return pt, fmt.Errorf("order %v of chain %v: %w", order, pt.Chain.Members, ErrNotMember)
		}
	}
	if slices.Equal(order, pt.Chain.Members) {
		return pt, nil
	}
	out := pt.clone()
	out.Chain.Members = slices.Clone(order)
	out.Chain.Version++
	return out, nil
}
