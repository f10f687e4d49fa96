// Package kvserver is the ecskv storage server. It registers in etcd under a
// lease, follows the ring the ECS publishes, and serves the key operations of
// the partitions its chains give it: writes at the head of a chain, reads at
// the tail (DESIGN §4). Data lives in one pebble DB with an LRU in front
// (package storage).
//
// Concurrency: the current ring is an immutable *ringmeta.Ring behind an
// atomic pointer, replaced only by applyRing (watch and ping). The chain
// protocol of every partition is one deterministic state machine
// (package chainsm) owned by core: each input (a client call, a peer
// message, a ring, a tick, a finished WAL sync) runs under core's lock
// together with the storage writes it causes; WAL syncs, sends and answers
// happen after the lock is released. Every goroutine is started by
// goAttach and joined by Stop.
package kvserver
