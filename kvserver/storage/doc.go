// Package storage owns a kvserver's on-disk state: one pebble DB holding every
// partition the server is a member of, plus an LRU of decoded records in front
// of it (DESIGN.md §6).
//
// # Layout
//
// A data key is partition (2 bytes, big endian) | namespace | 0x00 | key, so a
// partition is one contiguous key range (snapshot, transfer, drop) and the
// namespaces inside it never collide. A value is a Record: seq (8 bytes BE) |
// expiry (unix ms, 8 bytes BE, 0 = none) | value. Per-partition state lives
// under the reserved prefix 0xFF 0xFF | partition (2 bytes BE) | kind, which is
// never a data partition because P <= MaxPartitions = 32768:
//
//	0x01                          applied_seq (8 bytes BE) of writes without a log
//	                              record; a partition's applied seq is the highest of
//	                              it, the truncation point and the last log record
//	0x02                          chain version 8 | epoch 8 | flags 1 (bit 0: unsynced);
//	                              an 8-byte value is the version alone
//	0x03 | seq 8                  log record: the entry applied at seq, a kvpb.Update;
//	                              0x00 | Update: lean, its one put's value is in the
//	                              data record (lean.go)
//	0x04 | client 8 | cseq 8      dedup record: seq 8 | status 4 | wall ms 8
//	0x05                          truncation point (8 bytes BE): log records <= it are gone
//
// ApplyEntry writes the data, the log record and the dedup record in one
// pebble batch, and pebble recovers whole batches, so after a crash the log
// is exactly the seqs between the truncation point and the applied seq
// (RecoverPartitions). A Writer puts many entries, of any
// partitions, with their truncations and dedup deletions, in one batch: a
// server commits each step of its chain node with one WAL write. Nothing the chain protocol needs to be
// safe lives only in memory (DESIGN.md §4).
//
// # Concurrency contract
//
// A Store is safe for concurrent use with these rules:
//   - The writers of one partition (Apply, ApplyEntry, Ingest, IngestSnapshot,
//     TruncateLog, ForgetDedup, SetVersion, DropPartition, a Writer from
//     NewWriter until its Commit) are serialised by
//     the caller (one writer per partition, DESIGN.md §4); different
//     partitions may write concurrently.
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
