//go:build simcanary_tailsynced

package chainsm

// canaryTailSynced puts back the tail's commit point of forward-after-sync
// replication (its own synced seq) under overlapped durability: the tail
// commits entries its predecessors have not synced yet.
const canaryTailSynced = true
