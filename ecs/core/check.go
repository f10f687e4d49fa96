package core

import (
	"fmt"
	"slices"
)

// Check reports whether pt keeps the invariants every published chain
// keeps: members, no server twice, marks only on members, one each and no
// later than the chain's version, and a synced head (so at least one synced
// member, and an unsynced member is never head or sole member).
func Check(pt Partition) error {
	ch := pt.Chain
	if len(ch.Members) == 0 {
		return fmt.Errorf("%w: no members", ErrBadChain)
	}
	for i, m := range ch.Members {
		if m == "" || slices.Contains(ch.Members[:i], m) || m == ch.Learner {
			return fmt.Errorf("%w: %q empty or twice", ErrBadChain, m)
		}
	}
	for i, mk := range pt.Unsynced {
		if ch.Index(mk.ID) < 0 || mk.Version > ch.Version || slices.ContainsFunc(pt.Unsynced[:i], func(x Mark) bool { return x.ID == mk.ID }) {
			return fmt.Errorf("%w: mark %+v on no member, ahead of the chain or twice", ErrBadChain, mk)
		}
	}
	if !pt.Synced(ch.Head()) {
		return fmt.Errorf("%w: unsynced head %q", ErrBadChain, ch.Head())
	}
	return nil
}

// CheckStep reports whether after may follow before in one step of this
// package (Remove, Promote, AddLearner, Shrink): after keeps the invariants,
// no member became synced (only Clear, on a member's report, does that),
// and the version grew by one exactly when members or learner changed.
func CheckStep(before, after Partition) error {
	if err := Check(after); err != nil {
		return err
	}
	for _, m := range after.Chain.Members {
		if after.Synced(m) && !before.Synced(m) {
			return fmt.Errorf("%w: %q became synced without a report", ErrBadChain, m)
		}
	}
	want := before.Chain.Version
	if changed(before.Chain, after.Chain) {
		want++
	}
	if after.Chain.Version != want {
		return fmt.Errorf("%w: version %d after %d", ErrBadChain, after.Chain.Version, before.Chain.Version)
	}
	return nil
}
