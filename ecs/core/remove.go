package core

import "slices"

// Remove is failover (step a): it takes the servers in gone (down, or
// restarted as a new incarnation) out of the partition, keeping the rules:
//
//   - A gone member leaves, unless the chain would keep no synced member:
//     then the synced member nearest the tail stays (the partition waits
//     for it to come back on its data; its successors keep their
//     predecessor). A chain without any synced member (which no rule
//     produces) keeps its members.
//   - A remaining unsynced member whose predecessor changed (left, or was
//     demoted itself) leaves the members, since no remaining member keeps
//     the log entries it lacks: the first becomes the learner, to copy the
//     partition afresh, and any other leaves the chain.
//   - The learner slot empties when the learner is gone, when the members
//     change (the learner's ready key names the old version; a gone tail
//     was its source) and when the tail is a gone member kept in the chain
//     (nothing to copy from). A demoted member takes an empty slot only
//     under a tail that is not gone.
//   - Marks go with their members; the version grows by one if anything
//     changed.
func Remove(pt Partition, gone map[string]bool) Partition {
	out := pt.clone()
	old := pt.Chain.Members
	members := slices.DeleteFunc(slices.Clone(old), func(m string) bool { return gone[m] })
	var demoted []string
	switch keep := lastSynced(pt, old); {
	case keep == "":
		members = slices.Clone(old) // no member is known to hold everything: nothing safe to drop
	case !slices.ContainsFunc(members, pt.Synced):
		members = slices.DeleteFunc(slices.Clone(old), func(m string) bool { return gone[m] && m != keep })
		fallthrough
	default:
		members, demoted = demote(pt, members)
	}
	out.Chain.Members = members
	learner := pt.Chain.Learner
	if gone[learner] || !slices.Equal(members, old) || gone[out.Chain.Tail()] {
		learner = ""
	}
	if learner == "" && len(demoted) > 0 && !gone[out.Chain.Tail()] {
		learner = demoted[0]
	}
	out.Chain.Learner = learner
	out.keepMarks()
	if changed(pt.Chain, out.Chain) {
		out.Chain.Version++
	}
	return out
}

// lastSynced returns the synced member nearest the tail, or "".
func lastSynced(pt Partition, members []string) string {
	for i := len(members) - 1; i >= 0; i-- {
		if pt.Synced(members[i]) {
			return members[i]
		}
	}
	return ""
}

// demote takes out of members, head first, every unsynced member whose
// predecessor differs from the one it had in pt's chain (a head has none),
// and returns what remains and what it took, in chain order.
func demote(pt Partition, members []string) ([]string, []string) {
	var out []string
	for i := 0; i < len(members); i++ {
		m := members[i]
		if pt.Synced(m) {
			continue
		}
		was := pt.Chain.Index(m)
		if i > 0 && was > 0 && members[i-1] == pt.Chain.Members[was-1] {
			continue
		}
		out = append(out, m)
		members = slices.Delete(members, i, i+1)
		i-- // its successor now has a new predecessor: look at it next
	}
	return members, out
}
