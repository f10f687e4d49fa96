package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// EngineStats is a snapshot of the store's size and pebble's background work, for
// the server's /metrics.
type EngineStats struct {
	DiskBytes      uint64 // live and obsolete files of the DB
	MemtableBytes  uint64
	WALBytes       uint64 // bytes written to the WAL since open
	Flushes        int64
	Compactions    int64
	CompactionDebt uint64 // estimated bytes left to compact for a stable LSM
	ReadAmp        int
	L0Files        int64
}

// EngineStats reads pebble's metrics; ok is false after Close.
func (s *Store) EngineStats() (st EngineStats, ok bool) {
	m := s.Metrics()
	if m == nil {
		return EngineStats{}, false
	}
	return EngineStats{
		DiskBytes:      m.DiskSpaceUsage(),
		MemtableBytes:  m.MemTable.Size,
		WALBytes:       m.WAL.BytesWritten,
		Flushes:        m.Flush.Count,
		Compactions:    m.Compact.Count,
		CompactionDebt: m.Compact.EstimatedDebt,
		ReadAmp:        m.ReadAmp(),
		L0Files:        m.Levels[0].TablesCount,
	}, true
}

// CacheLen returns the cache's entry count and bytes.
func (s *Store) CacheLen() (entries int, bytes int64) { return s.cache.len() }

// CountKeys counts the stored data keys of every partition (expired records
// not yet swept included) by a keys-only scan of a consistent snapshot.
func (s *Store) CountKeys() (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	lo, _ := partitionBounds(0)
	_, hi := partitionBounds(MaxPartitions - 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi, KeyTypes: pebble.IterKeyTypePointsOnly})
	if err != nil {
		return 0, fmt.Errorf("storage: count keys: %w", err)
	}
	var n uint64
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("storage: count keys: %w", err)
	}
	return n, nil
}
