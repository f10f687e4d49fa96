package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// iterate calls fn with the raw key and value of every data key of partition p
// in r, in key order. k and v are valid only during the call.
func iterate(r pebble.Reader, p int, fn func(k, v []byte) error) error {
	lo, hi := partitionBounds(p)
	return iterRange(r, p, lo, hi, fn)
}

// iterRange calls fn for every key in [lo, hi) of r, which belong to
// partition p (named in errors).
func iterRange(r pebble.Reader, p int, lo, hi []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("storage: iter partition %d: %w", p, err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("storage: iter partition %d: %w", p, err)
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: iter partition %d: %w", p, err)
	}
	return nil
}

// scanRecords decodes every record of partition p in r and calls fn.
func scanRecords(r pebble.Reader, p int, fn func(ns, key []byte, rec Record) error) error {
	return iterate(r, p, func(k, v []byte) error {
		_, ns, key, err := DecodeKey(k)
		if err != nil {
			return fmt.Errorf("storage: key %x: %w", k, err)
		}
		rec, err := DecodeRecord(v)
		if err != nil {
			return fmt.Errorf("storage: key %x: %w", k, err)
		}
		return fn(ns, key, rec)
	})
}

// Scan calls fn for every stored record of a partition in key order, expired
// records included (use ScanLive to skip them), and stops at fn's first
// non-nil error, which it returns. ns, key and r.Value are valid only during
// the call: copy what you keep.
func (s *Store) Scan(partition int, fn func(ns, key []byte, r Record) error) error {
	if err := s.check(partition); err != nil {
		return err
	}
	return scanRecords(s.db, partition, fn)
}

// ScanLive is Scan restricted to records not expired at nowMs.
func (s *Store) ScanLive(partition int, nowMs int64, fn func(ns, key []byte, r Record) error) error {
	return s.Scan(partition, func(ns, key []byte, r Record) error {
		if r.Expired(nowMs) {
			return nil
		}
		return fn(ns, key, r)
	})
}

// ScanSnapshot is Scan over a pebble snapshot and returns the applied_seq of
// that same snapshot: the starting point of a transfer to a learner, which
// then receives every update after appliedSeq.
func (s *Store) ScanSnapshot(partition int, fn func(ns, key []byte, r Record) error) (appliedSeq uint64, err error) {
	if err := s.check(partition); err != nil {
		return 0, err
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if appliedSeq, err = readApplied(snap, partition); err != nil {
		return 0, err
	}
	if err := scanRecords(snap, partition, fn); err != nil {
		return 0, err
	}
	return appliedSeq, nil
}

// Partitions returns, in ascending order, the partitions that hold data or
// state. It seeks from partition to partition, not key to key.
func (s *Store) Partitions() ([]int, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return partitionsOf(s.db)
}

// partitionsOf is Partitions over r.
func partitionsOf(r pebble.Reader) ([]int, error) {
	it, err := r.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("storage: partitions: %w", err)
	}
	var ps []int
	for valid := it.First(); valid; {
		k := it.Key()
		p := keyPartition(k)
		if p >= MaxPartitions {
			break // not written by this package; nothing of ours sorts after
		}
		ps = append(ps, p)
		if len(k) >= 4 && k[0] == stateTag && k[1] == stateTag {
			_, next := stateBounds(p)
			valid = it.SeekGE(next)
		} else {
			_, next := partitionBounds(p)
			valid = it.SeekGE(next)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("storage: partitions: %w", err)
	}
	slices.Sort(ps)
	return slices.Compact(ps), nil
}

// Checksum hashes (FNV-64a) every stored record of a partition (key, seq,
// expiry, value; expired records included so the result does not depend on
// the clock) and its applied_seq, read from one snapshot. Replicas at the same
// applied_seq have equal checksums. The chain version is not included.
func (s *Store) Checksum(partition int) (uint64, error) {
	if err := s.check(partition); err != nil {
		return 0, err
	}
	h := fnv.New64a()
	var lens [8]byte
	applied, err := s.ScanSnapshot(partition, func(ns, key []byte, r Record) error {
		// Length-prefix the variable fields so field boundaries are unambiguous.
		for _, f := range [][]byte{ns, key, r.Value} {
			binary.BigEndian.PutUint32(lens[:4], uint32(len(f)))
			_, _ = h.Write(lens[:4])
			_, _ = h.Write(f)
		}
		binary.BigEndian.PutUint64(lens[:], r.Seq)
		_, _ = h.Write(lens[:])
		binary.BigEndian.PutUint64(lens[:], uint64(r.ExpiryMs))
		_, _ = h.Write(lens[:])
		return nil
	})
	if err != nil {
		return 0, err
	}
	binary.BigEndian.PutUint64(lens[:], applied)
	_, _ = h.Write(lens[:])
	return h.Sum64(), nil
}

// ExpiredKeys returns up to limit (<= 0: no limit) delete ops for records of a
// partition whose expiry is at or before nowMs, for the head's TTL sweeper.
// The sweeper should re-check each key under the partition's writer (Get with
// nowMs = 0 returns the record whatever its expiry) before replicating the delete.
func (s *Store) ExpiredKeys(partition int, nowMs int64, limit int) ([]Op, error) {
	if err := s.check(partition); err != nil {
		return nil, err
	}
	return deleteOps(limit, func(add func(ns, key []byte) error) error {
		return scanRecords(s.db, partition, func(ns, key []byte, r Record) error {
			if !r.Expired(nowMs) {
				return nil
			}
			return add(ns, key)
		})
	})
}

// deleteOps returns delete ops for the keys scan adds, copied, up to limit
// (<= 0: no limit).
func deleteOps(limit int, scan func(add func(ns, key []byte) error) error) ([]Op, error) {
	var ops []Op
	err := scan(func(ns, key []byte) error {
		ops = append(ops, Op{Kind: OpDelete, NS: slices.Clone(ns), Key: slices.Clone(key)})
		if limit > 0 && len(ops) >= limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return ops, nil
}

// NamespaceKeys returns up to limit (<= 0: no limit) delete ops for the
// records of namespace ns in a partition, expired ones included: the head
// deletes a removed user's keys with them. It reads only that namespace's
// range (partition | ns | 0x00), so a namespace without keys costs one seek.
func (s *Store) NamespaceKeys(partition int, ns []byte, limit int) ([]Op, error) {
	if err := s.check(partition); err != nil {
		return nil, err
	}
	if err := ValidateNamespace(ns); err != nil {
		return nil, err
	}
	lo, hi := prefixBounds(partition, ns, nil)
	return deleteOps(limit, func(add func(ns, key []byte) error) error {
		return iterRange(s.db, partition, lo, hi, func(k, _ []byte) error {
			_, _, key, err := DecodeKey(k)
			if err != nil {
				return fmt.Errorf("storage: key %x: %w", k, err)
			}
			return add(ns, key)
		})
	})
}

// PartitionStats sizes one partition.
type PartitionStats struct {
	Keys  int    // stored records, expired included
	Bytes uint64 // sum of encoded key and record sizes
}

// Stats counts a partition's records and bytes exactly (a full scan of the partition).
func (s *Store) Stats(partition int) (PartitionStats, error) {
	if err := s.check(partition); err != nil {
		return PartitionStats{}, err
	}
	var st PartitionStats
	err := iterate(s.db, partition, func(k, v []byte) error {
		st.Keys++
		st.Bytes += uint64(len(k) + len(v))
		return nil
	})
	return st, err
}

// DiskUsage estimates the on-disk bytes of a partition's data (pebble
// EstimateDiskUsage: cheap, approximate, ignores the memtable).
func (s *Store) DiskUsage(partition int) (uint64, error) {
	if err := s.check(partition); err != nil {
		return 0, err
	}
	lo, hi := partitionBounds(partition)
	n, err := s.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		return 0, fmt.Errorf("storage: disk usage of partition %d: %w", partition, err)
	}
	return n, nil
}

// Snapshot is a point-in-time view of the store, for streaming a partition
// to a learner while writes go on.
type Snapshot struct{ snap *pebble.Snapshot }

// NewSnapshot takes a snapshot; Close it when done.
func (s *Store) NewSnapshot() *Snapshot { return &Snapshot{snap: s.db.NewSnapshot()} }

// Scan calls fn for every record of partition p in the snapshot, in key
// order. The slices alias the iterator: copy what is kept.
func (sn *Snapshot) Scan(p int, fn func(ns, key []byte, r Record) error) error {
	if err := ValidatePartition(p); err != nil {
		return err
	}
	return scanRecords(sn.snap, p, fn)
}

// Close releases the snapshot.
func (sn *Snapshot) Close() { _ = sn.snap.Close() }

// AppliedSeq returns partition p's applied_seq in the snapshot: written in
// the same batch as the data, it is the seq of the last write the
// snapshot's records include.
func (sn *Snapshot) AppliedSeq(p int) (uint64, error) {
	if err := ValidatePartition(p); err != nil {
		return 0, err
	}
	return readApplied(sn.snap, p)
}

// ScanKeys calls fn, in key order, for every record of namespace ns in
// partition p whose key starts with prefix and sorts after after (none:
// from the first), expired ones included, until fn returns false or an
// error (which ScanKeys returns). It reads only that range, so a scan of
// one namespace never sees another's keys. key and r.Value alias the
// iterator: copy what is kept.
func (sn *Snapshot) ScanKeys(p int, ns, prefix, after []byte, fn func(key []byte, r Record) (bool, error)) error {
	if err := ValidatePartition(p); err != nil {
		return err
	}
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	lo, hi := prefixBounds(p, ns, prefix)
	if len(after) > 0 {
		// The first key after it: after followed by 0x00.
		if from := append(appendKeyUnchecked(nil, p, ns, after), 0); bytes.Compare(from, lo) > 0 {
			lo = from
		}
	}
	if bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	err := iterRange(sn.snap, p, lo, hi, func(k, v []byte) error {
		_, _, key, err := DecodeKey(k)
		if err != nil {
			return fmt.Errorf("storage: key %x: %w", k, err)
		}
		rec, err := DecodeRecord(v)
		if err != nil {
			return fmt.Errorf("storage: key %x: %w", k, err)
		}
		more, err := fn(key, rec)
		if err == nil && !more {
			return errStop
		}
		return err
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// prefixBounds returns [lo, hi) covering the keys of namespace ns in
// partition p that start with prefix.
func prefixBounds(p int, ns, prefix []byte) (lo, hi []byte) {
	lo = appendKeyUnchecked(nil, p, ns, prefix)
	// The prefix's successor: drop trailing 0xFF bytes, add one to the last.
	end := bytes.TrimRight(prefix, "\xff")
	if len(end) == 0 {
		hi = appendKeyUnchecked(nil, p, ns, nil)
		hi[len(hi)-1] = 1 // just past every key of ns: the 0x00 that ends it, plus one
		return lo, hi
	}
	hi = appendKeyUnchecked(nil, p, ns, end)
	hi[len(hi)-1]++
	return lo, hi
}
