// Package ecs is the External Configuration Service: it starts or joins
// etcd, elects one leader among ECS processes, admits kvservers that register
// under leases, publishes the ring metadata (DESIGN §2-3) with a
// compare-and-swap on the leader key and the ring's revision, and, for
// `ecs start -n N`, launches and supervises local kvserver processes
// (through package ecs/launcher).
//
// The leader is the configuration master of every partition's chain
// (DESIGN §4-5). Its controller changes a chain only in these steps, each in
// its own epoch for a given partition, bumping the chain's version, and
// each decided by the pure rules of ecs/core:
//
//   - (a) failover (membership.go): a server whose lease is gone, whose
//     health probes fail (detector.go) or that restarted leaves every chain
//     where a member known to hold every acknowledged write remains, in one
//     epoch; an unsynced member that loses its predecessor becomes the
//     learner again;
//   - (b) a learner is set on a chain (moves.go plans it, at most max-moves
//     in flight cluster-wide, under-replicated partitions first);
//   - (c) a learner that wrote ready/<id>/<p> becomes the tail (rebalance.go),
//     marked unsynced in the controller state of the same epoch until it
//     writes synced/<id>/<p> (synced.go); no other step touches the
//     partition meanwhile;
//   - (d) in a later epoch, the member the plan moves away leaves.
//
// Admin requests (`ecs add`, `ecs remove`) go through etcd, so any host can
// run them (ecs/opclient writes them, requests.go answers them); `ecs check`
// compares replicas through the kvservers' Digest (ecs/opclient). The leader
// keeps its plan and progress in etcd next to the ring (ecs/ctlstate),
// written in the same transaction, so a new leader carries on where the old
// one stopped and `ecs status` reads progress from any host. The ECS serves
// /metrics and, through ecs/statuspage, the status page, /status and /sd.
//
// Where each part of the ecs command lives:
//
//   - ecs (this package): the controller, run by `ecs start`;
//   - ecs/opclient: the operator client of `ecs status`, `add`, `remove`,
//     `replace`, `restart`, `check` and `user`;
//   - ecs/backup: `ecs backup` and `ecs restore` (files, manifest, verify);
//   - ecs/launcher: the local kvserver processes of `ecs start -n N`;
//   - ecs/statuspage: the status page and its JSON;
//   - ecs/ctlstate: the leader's record in etcd, shared by the above;
//   - ecs/core: the pure chain rules;
//   - ecs/cmd/ecs: the command itself (flags, output).
//
// Concurrency: the controller goroutine owns the ring being built, the
// member table, probe verdicts and the plan; the detector's probe loops, the
// etcd watches and the digest calls that size moves only send it events.
package ecs
