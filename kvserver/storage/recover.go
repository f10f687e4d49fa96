package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// PartitionState is what the store kept of a partition across a restart:
// everything the chain protocol needs before the partition serves again
// (DESIGN.md §4: nothing safety needs lives only in memory).
type PartitionState struct {
	Partition int
	Applied   uint64
	Ver       uint64 // chain version followed (SetVersion)
	Epoch     uint64 // the epoch Ver was adopted in
	Unsynced  bool
	Truncated uint64
	// Log holds the entries Truncated < seq <= Applied, in seq order.
	Log []LogEntry
	// Dedup is oldest first, as DedupRecords.
	Dedup []DedupRecord
}

// RecoverPartitions returns, in partition order, the state of every
// partition holding any record (data or state), read from one snapshot.
// Pebble recovers whole batches, and the last log record is the applied
// seq (readApplied), so the log is exactly the seqs after the truncation
// point up to it; a missing record is ErrLogGap naming the partition.
func (s *Store) RecoverPartitions() ([]PartitionState, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	ps, err := partitionsOf(snap)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionState, 0, len(ps))
	for _, p := range ps {
		st, err := recoverPartition(snap, p)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// recoverPartition reads partition p's state from r.
func recoverPartition(r pebble.Reader, p int) (PartitionState, error) {
	st := PartitionState{Partition: p}
	var err error
	if st.Applied, err = readApplied(r, p); err != nil {
		return st, err
	}
	if st.Truncated, err = readState(r, p, stateTruncate); err != nil {
		return st, err
	}
	v, err := readVersion(r, p)
	if err != nil {
		return st, err
	}
	st.Ver, st.Epoch, st.Unsynced = v.ver, v.epoch, v.unsynced
	if st.Log, _, err = readLog(r, p, st.Truncated, st.Applied); err != nil {
		return st, err
	}
	if st.Dedup, err = readDedup(r, p); err != nil {
		return st, err
	}
	return st, nil
}

// readLog reads partition p's log records truncated < seq <= applied from r,
// with the values of lean ones from their data records (lean[i]: log[i]'s
// record is lean), and checks that none is missing and none lies beyond
// applied.
func readLog(r pebble.Reader, p int, truncated, applied uint64) (log []LogEntry, lean []bool, err error) {
	log = make([]LogEntry, 0, min(applied-truncated, 1<<12))
	next := truncated + 1
	_, hi := kindBounds(p, stateLog)
	err = iterRange(r, p, logKey(p, next), hi, func(k, v []byte) error {
		if len(k) != stateKeyLen+8 {
			return fmt.Errorf("storage: partition %d: log key %x: %w", p, k, ErrCorruptRecord)
		}
		seq := binary.BigEndian.Uint64(k[stateKeyLen:])
		switch {
		case seq > applied:
			return fmt.Errorf("storage: partition %d: log record %d above applied %d: %w", p, seq, applied, ErrCorruptRecord)
		case seq != next:
			return logGap(p, next, truncated, applied)
		}
		e, isLean, err := decodeLog(v)
		if err != nil {
			return fmt.Errorf("storage: partition %d: %w", p, err)
		}
		if e.Seq != seq {
			return fmt.Errorf("storage: partition %d: log record %d holds seq %d: %w", p, seq, e.Seq, ErrCorruptRecord)
		}
		if isLean {
			if err := fillLean(r, p, &e); err != nil {
				return fmt.Errorf("storage: partition %d: %w", p, err)
			}
		}
		log, lean = append(log, e), append(lean, isLean)
		next++
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if next != applied+1 {
		return nil, nil, logGap(p, next, truncated, applied)
	}
	return log, lean, nil
}

func logGap(p int, seq, truncated, applied uint64) error {
	return fmt.Errorf("storage: partition %d: log record %d of %d..%d: %w", p, seq, truncated+1, applied, ErrLogGap)
}
