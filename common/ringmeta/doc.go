// Package ringmeta holds the versioned ring metadata of an ecskv cluster
// (DESIGN §2): the servers, the partition count P, the replication factor R
// and, for every partition, its chain of servers. The ECS is the only writer;
// it stores one JSON document in etcd and bumps Epoch on every change.
// Clients and servers never compute placement: they read chains from here.
//
// A Ring is immutable once published: readers share one *Ring between
// goroutines without locks, and writers Clone before changing it.
package ringmeta
