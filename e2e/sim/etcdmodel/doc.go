// Package etcdmodel is a deterministic in-memory model of the part of etcd
// v3 that ecskv uses (DESIGN §3), for the single-threaded seeded simulator
// (SIMULATION §3.3).
//
// It owns the keyspace and its revisions, atomic compare-and-swap txns,
// leases and their expiry, watches with their per-watch event queues, the
// event history behind them up to compaction, and the election recipe of
// clientv3 concurrency.Election. It does not own faults: the simulator
// decides when etcd is down, which replies are lost and when queued watch
// events reach their watcher; this package only says what etcd would have
// done.
//
// Semantics follow etcd wherever the ecskv control plane can observe them:
//   - the store starts at revision 1; a txn that changes the keyspace takes
//     one new revision for all its writes; a txn that only reads, or whose
//     deletes find nothing, takes none;
//   - a Value compare on a missing key is false (etcd has no missing value);
//     the other targets of a missing key read zero;
//   - a Put under a lease that is gone fails the whole txn, which then
//     changes nothing; only the branch taken is checked;
//   - a lease that expires or is revoked deletes its keys in one revision
//     (none if it has no keys);
//   - Compact(rev) keeps revision rev: a watch may start at rev but not
//     below it.
//
// Time: every call that may change state takes now, the simulated true time
// in nanoseconds, and first expires every lease whose deadline is at or
// before now. now must never go back (a caller bug; it panics). Calls without
// now see the state left by the last call. After an outage the simulator
// calls Promote before anything else, since an outage never expires leases
// by itself.
//
// Concurrency: none. A Store belongs to one goroutine; it starts no
// goroutine, reads no clock, draws no randomness and never ranges over a
// map, so the same calls in the same order give the same results.
package etcdmodel
