// Package hashring computes partition placement for an ecskv cluster
// (DESIGN §2): which servers form the replica chain [head, ..., tail] of
// each of the P partitions of the MD5 hash space.
//
// It owns two decisions and nothing else:
//
//   - Initial lays out a new cluster as runs of neighbours: every server
//     owns one token on a 64-bit ring (zones taking turns), the ring is cut
//     into N equal arcs of partitions, and the arc of server g has the chain
//     of g and the R-1 servers after it. A server so replicates with its two
//     ring neighbours only, and few sets of servers hold whole partitions
//     (copysets). WithTokens lays it out by consistent hashing instead: a
//     partition's chain is the first R distinct servers clockwise from its
//     start over many tokens per server, skipping servers in a zone the
//     chain already uses and servers that already hold their bounded-load
//     share (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
//     Bounded Loads", SODA 2018).
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
