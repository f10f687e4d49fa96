// Package kvserver is the ecskv storage server. It registers in etcd under a
// lease, follows the ring the ECS publishes, and serves the key operations of
// the partitions its chains give it: writes at the head of a chain, reads at
// the tail (DESIGN §4). Data lives in one pebble DB with an LRU in front
// (package storage).
//
// Concurrency: the current ring is an immutable *ringmeta.Ring behind an
// atomic pointer, replaced only by the ring watcher. Writes to one partition
// are serialised by that partition's mutex (which also owns its sequence
// number); different partitions proceed in parallel and share pebble's group
// commit. Every goroutine is started by goAttach and joined by Stop.
package kvserver
