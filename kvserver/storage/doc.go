// Package storage owns a kvserver's on-disk state: one pebble DB holding every
// partition the server is a member of, plus an LRU of decoded records in front
// of it (DESIGN.md §6).
//
// # Layout
//
// A data key is partition (2 bytes, big endian) | namespace | 0x00 | key, so a
// partition is one contiguous key range (snapshot, transfer, drop) and the
// namespaces inside it never collide. A value is a Record: seq (8 bytes BE) |
// expiry (unix ms, 8 bytes BE, 0 = none) | value. Per-partition state
// (applied_seq, chain version) lives under the reserved prefix 0xFF 0xFF, which
// is never a data partition because P <= MaxPartitions = 32768; applied_seq is
// written in the same pebble batch as the data it covers.
//
// # Concurrency contract
//
// A Store is safe for concurrent use with these rules:
//   - Apply, Ingest and DropPartition for one partition are serialised by the
//     caller (one writer per partition, DESIGN.md §4); different partitions may
//     write concurrently.
//   - Reads (Get, Scan, Checksum, ...) may run at any time, concurrently with
//     writes; they see committed data only.
//   - Close must be called once every other call has returned (Stop = cancel →
//     wait → close). Calls after Close return ErrClosed.
//
// The only lock is recordCache.mu (see cache.go). It is a leaf lock: it is never
// held while calling pebble or user callbacks, so there is no lock order.
//
// Byte slices returned by DecodeKey, DecodeRecord and passed to Scan callbacks
// alias their input and are valid only as documented on each function. Record
// values returned by Get may be shared with the cache and must not be modified.
package storage
