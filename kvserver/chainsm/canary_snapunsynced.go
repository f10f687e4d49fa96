//go:build simcanary_snapunsynced

package chainsm

// canarySnapUnsynced puts back the copy rules of forward-after-sync
// replication under overlapped durability: a tail snapshots, and feeds its
// learner, whatever it has synced itself, which a crash of the chain above
// may lose.
const canarySnapUnsynced = true
