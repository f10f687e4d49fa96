//go:build simcanary_unsyncedhead

package sim

// simcanary_unsyncedhead puts back stripping that ignores the unsynced marks
// (issue 12, bug 3): a promoted tail that may lack writes its removed
// predecessors committed becomes head, or stays after them instead of
// being demoted.
const canaryUnsyncedHead = true
