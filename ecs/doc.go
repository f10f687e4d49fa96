// Package ecs is the External Configuration Service: it starts or joins
// etcd, elects one leader among ECS processes, admits kvservers that register
// under leases, publishes the ring metadata (DESIGN §2-3) with a
// compare-and-swap on the leader key and the ring's revision, and, for
// `ecs start -n N`, launches and supervises local kvserver processes.
//
// Concurrency: the controller goroutine owns the ring being built and the
// member table; the membership watcher and the launcher only send it events.
package ecs
