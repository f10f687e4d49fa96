// Package chainsm is the chain replication protocol of one kvserver as a
// deterministic state machine (DESIGN §4), in the style of etcd raft's
// RawNode: inputs are client proposals and reads, peer messages, ring
// changes, ticks and storage completions; outputs, collected by Ready, are
// storage writes and syncs, messages to peers, answers to clients and
// reports for etcd. There is no I/O, no goroutine and no clock inside: every
// input carries the node's monotonic time, and NextDeadline says when the
// node wants a Tick. A Node is not safe for concurrent use; one owner (the
// kvserver shell, or the simulator) drives it.
//
// The stages of a write, each in its own file:
//
//   - propose.go: the head checks fencing and the dedup table, gives the
//     write the next seq, and asks storage to apply it (unsynced) together
//     with its log entry and dedup record.
//   - replicate.go: a member forwards an entry to its successor at once,
//     before its own sync (durability overlaps along the chain), and passes
//     down a watermark: every seq up to it is synced here and above. The
//     successor applies entries in seq order and asks for a resend (nack) on
//     a gap; the tail commits up to its own synced seq and that watermark.
//   - commit.go: acknowledgements travel up the chain; the head answers a
//     client when the entry is committed (synced on every member), never
//     before a removed member's read lease has run out (holdback).
//   - adopt.go: a new chain version for a partition: the successor says
//     hello with its applied seq (a nack), the predecessor resends what the
//     successor lacks and tells it how far it must apply (sync).
//   - learner.go: a learner copies a snapshot of the tail, then every later
//     entry; promoted to tail, it is unsynced until it holds everything its
//     predecessor held, and reports when it does.
//   - read.go: reads are served by the tail, or by any member for a key
//     with no entry in flight (CRAQ), only under a read lease and outside
//     the holdback.
//   - lease.go: read leases between chain neighbours, granted only by a
//     member with fresh etcd contact at the same epoch.
//   - recover.go: after a restart the node rebuilds each partition from
//     what storage kept (applied seq, chain version, the log of entries not
//     known to be committed, the dedup table) and resends before serving.
//   - probe.go: a restarted member may have lost entries it forwarded
//     before its sync; it gets them back from its successor before it
//     sequences anything (the longest history in the chain wins).
//
// Invariants, checked by check.go in tests and the simulator:
//   - seqs are applied contiguously; a chain version never decreases;
//   - committed <= synced <= applied on every member;
//   - an Ack never covers a seq not synced on every member of the chain;
//     no answer and no read is given above the commit point;
//   - a copy (snapshot or learner feed) holds only entries synced on every
//     member above it, so no crash of the chain takes back what it holds.
package chainsm
