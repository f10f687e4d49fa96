// Package hashring computes partition placement for an ecskv cluster
// (DESIGN §2): which servers form the replica chain [head, ..., tail] of
// each of the P partitions of the MD5 hash space.
//
// It owns two decisions and nothing else:
//
//   - Initial lays out a new cluster by consistent hashing: every server
//     owns tokens on a 64-bit ring, and a partition's chain is the first R
//     distinct servers clockwise from the partition's start, skipping servers
//     in a zone the chain already uses and servers that already hold their
//     bounded-load share (Mirrokni, Thorup, Zadimoghaddam, "Consistent
//     Hashing with Bounded Loads", SODA 2018).
//   - Rebalance starts from the chains already published and changes them
//     minimally: it drops members that left, appends new members at the
//     tail, moves single replicas into zones a chain lacks, and from the
//     most to the least loaded servers until the load bound holds. Adding or
//     removing one server moves about P*R/N replicas, never a reshuffle.
//
// Both keep every server within 1.10x of the mean number of partition
// replicas (the mean rounded up when that is larger). The load bound comes
// first, zones next: a chain spans min(R, zones) zones wherever the bound
// allows, which is every chain when the zones hold about equally many
// servers, whether they joined at once or one by one.
//
// The package is pure: no I/O, no goroutines, no global state, and the same
// inputs always give the same layout, whatever the order of the servers. It
// needs no locking; callers share results as ordinary values. Only the ECS
// planner calls it; clients and servers read chains from ringmeta.
package hashring
