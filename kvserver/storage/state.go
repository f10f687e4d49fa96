package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The version record: chain version 8 | epoch 8 | flags 1. Stores written
// before the epoch was kept hold the version alone (8 bytes).
const (
	versionLen      = 17
	versionUnsynced = 1 << 0 // may still lack what its predecessor held
)

// SetVersion records the chain version partition p follows, the epoch it
// was adopted in and whether this member is unsynced (a promoted member
// that may still lack what its predecessor held), in an unsynced write: the
// caller syncs before reporting the epoch.
func (s *Store) SetVersion(p int, ver, epoch uint64, unsynced bool) error {
	w := s.NewWriter()
	defer w.Close()
	if err := w.SetVersion(p, ver, epoch, unsynced); err != nil {
		return err
	}
	return w.Commit()
}

// versionValue encodes a version record.
func versionValue(ver, epoch uint64, unsynced bool) []byte {
	v := make([]byte, versionLen)
	binary.BigEndian.PutUint64(v, ver)
	binary.BigEndian.PutUint64(v[8:], epoch)
	if unsynced {
		v[16] |= versionUnsynced
	}
	return v
}

// versionState is a decoded version record.
type versionState struct {
	ver, epoch uint64
	unsynced   bool
}

// readVersion reads partition p's version record from r; a missing one
// reads as zero.
func readVersion(r pebble.Reader, p int) (versionState, error) {
	v, closer, err := r.Get(stateKey(p, stateMeta))
	if errors.Is(err, pebble.ErrNotFound) {
		return versionState{}, nil
	}
	if err != nil {
		return versionState{}, fmt.Errorf("storage: read version of partition %d: %w", p, err)
	}
	defer closer.Close()
	switch len(v) {
	case 8:
		return versionState{ver: binary.BigEndian.Uint64(v)}, nil
	case versionLen:
		return versionState{
			ver:      binary.BigEndian.Uint64(v),
			epoch:    binary.BigEndian.Uint64(v[8:]),
			unsynced: v[16]&versionUnsynced != 0,
		}, nil
	}
	return versionState{}, fmt.Errorf("storage: version of partition %d, %d bytes: %w", p, len(v), ErrCorruptRecord)
}

// IngestSnapshot replaces partition p with a snapshot in one unsynced batch:
// it deletes the partition's data, log, dedup and state records, then writes
// entries as they are (seq and expiry kept), applied_seq = applied, the
// truncation point = applied (the log starts after the snapshot) and the
// dedup records. The version record is kept: the snapshot replaces the
// contents, not the chain this member follows. The cache of p is dropped.
// Serialised per partition with the other writers.
func (s *Store) IngestSnapshot(p int, entries []Entry, applied uint64, dedup []DedupRecord) error {
	return s.ingest(p, entries, applied, dedup, true)
}

// FinishSnapshot completes a snapshot whose records were written chunk by
// chunk (Ingest with applied 0): like IngestSnapshot, but the partition's
// data stays.
func (s *Store) FinishSnapshot(p int, applied uint64, dedup []DedupRecord) error {
	return s.ingest(p, nil, applied, dedup, false)
}

func (s *Store) ingest(p int, entries []Entry, applied uint64, dedup []DedupRecord, dropData bool) error {
	if err := s.check(p); err != nil {
		return err
	}
	for i, e := range entries {
		if err := ValidateNamespace(e.NS); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	// Within a batch a range deletion covers only the writes before it, so
	// the drop and the load commit together.
	dlo, dhi := partitionBounds(p)
	slo, shi := stateBounds(p)
	ranges := [][2][]byte{{slo, stateKey(p, stateMeta)}, {stateKey(p, stateMeta+1), shi}}
	if dropData {
		ranges = append(ranges, [2][]byte{dlo, dhi})
	}
	for _, r := range ranges {
		if err := b.DeleteRange(r[0], r[1], nil); err != nil {
			return fmt.Errorf("storage: batch: %w", err)
		}
	}
	var kbuf, vbuf []byte
	for _, e := range entries {
		kbuf = appendKeyUnchecked(kbuf[:0], p, e.NS, e.Key)
		vbuf = AppendRecord(vbuf[:0], e.Record)
		if err := b.Set(kbuf, vbuf, nil); err != nil {
			return fmt.Errorf("storage: batch: %w", err)
		}
	}
	if err := setUint64(b, stateKey(p, stateApplied), applied); err != nil {
		return err
	}
	if err := setUint64(b, stateKey(p, stateTruncate), applied); err != nil {
		return err
	}
	for _, d := range dedup {
		if err := writeDedup(b, p, d); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("storage: ingest snapshot of partition %d: %w", p, err)
	}
	s.applied[p].Store(applied + 1)
	s.truncated[p].Store(applied + 1)
	s.lean[p] = nil // the log is gone
	s.cache.invalidate(p)
	return nil
}
