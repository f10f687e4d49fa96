package core

import (
	"slices"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// Mark says that chain member ID may lack writes committed before it
// joined: it was promoted from learner to tail at chain version Version and
// has not yet reported holding everything its predecessor had committed.
type Mark struct {
	ID      string `json:"id"`
	Version uint64 `json:"v"`
}

// Partition is one partition's chain with its unsynced marks: all the rules
// look at. Functions of this package never modify their argument's slices.
type Partition struct {
	Chain    ringmeta.Chain
	Unsynced []Mark
}

// Marked returns id's mark, if it has one.
func (pt Partition) Marked(id string) (Mark, bool) {
	for _, m := range pt.Unsynced {
		if m.ID == id {
			return m, true
		}
	}
	return Mark{}, false
}

// Synced reports whether id is a member known to hold every acknowledged
// write: a member without a mark.
func (pt Partition) Synced(id string) bool {
	_, marked := pt.Marked(id)
	return pt.Chain.Index(id) >= 0 && !marked
}

// Frozen reports whether the partition waits for an unsynced member: the
// planner takes no step on it until the mark is cleared. Only failover
// (Remove) changes it meanwhile; a marked member relies on that to know
// when its synced report is still owed (kvserver/chainsm adopt.go).
func (pt Partition) Frozen() bool { return len(pt.Unsynced) > 0 }

// clone copies the slices so a rule can build its result freely.
func (pt Partition) clone() Partition {
	return Partition{
		Chain:    ringmeta.Chain{Members: slices.Clone(pt.Chain.Members), Version: pt.Chain.Version, Learner: pt.Chain.Learner},
		Unsynced: slices.Clone(pt.Unsynced),
	}
}

// keepMarks drops the marks of servers that are no longer members.
func (pt *Partition) keepMarks() {
	pt.Unsynced = slices.DeleteFunc(pt.Unsynced, func(m Mark) bool { return pt.Chain.Index(m.ID) < 0 })
	if len(pt.Unsynced) == 0 {
		pt.Unsynced = nil
	}
}

// changed reports whether after differs from before in members or learner,
// which is what bumps a chain's version.
func changed(before, after ringmeta.Chain) bool {
	return before.Learner != after.Learner || !slices.Equal(before.Members, after.Members)
}
