package storage

import (
	"testing"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

// rawKeys counts the stored keys of p, data and state.
func rawKeys(t testing.TB, s *Store, p int) int {
	t.Helper()
	n := 0
	count := func(k, v []byte) error { n++; return nil }
	dlo, dhi := partitionBounds(p)
	slo, shi := stateBounds(p)
	require.NoError(t, iterRange(s.db, p, dlo, dhi, count))
	require.NoError(t, iterRange(s.db, p, slo, shi, count))
	return n
}

func TestVersionRecord(t *testing.T) {
	tests := []struct {
		name       string
		write      func(s *Store) error
		ver, epoch uint64
		unsynced   bool
		wantErr    error
	}{
		{"none", func(*Store) error { return nil }, 0, 0, false, nil},
		{"old 8-byte form", func(s *Store) error { return s.SetPartitionMeta(1, 7) }, 7, 0, false, nil},
		{"unsynced", func(s *Store) error { return s.SetVersion(1, 8, 3, true) }, 8, 3, true, nil},
		{"synced", func(s *Store) error { return s.SetVersion(1, 9, 4, false) }, 9, 4, false, nil},
		{"corrupt", func(s *Store) error { return s.db.Set(stateKey(1, stateMeta), []byte{1, 2, 3}, nil) }, 0, 0, false, ErrCorruptRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testOptions())
			fillPartition(t, s, 1, 1, 2)
			require.NoError(t, tt.write(s))
			ver, err := s.PartitionMeta(1)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.ver, ver)
			all, err := s.RecoverPartitions()
			require.ErrorIs(t, err, tt.wantErr)
			if tt.wantErr != nil {
				return
			}
			require.Len(t, all, 1)
			require.Equal(t, tt.ver, all[0].Ver)
			require.Equal(t, tt.epoch, all[0].Epoch)
			require.Equal(t, tt.unsynced, all[0].Unsynced)
		})
	}
}

func TestDropPartitionDropsLogState(t *testing.T) {
	s := openTest(t, testOptions())
	for _, p := range []int{6, 7, 8} {
		fillPartition(t, s, p, 1, 9)
		require.NoError(t, s.TruncateLog(p, 3))
		require.NoError(t, s.SetVersion(p, 4, 2, true))
	}
	before := recoverOne(t, s, 8)
	require.NotZero(t, rawKeys(t, s, 7))

	require.NoError(t, s.DropPartition(7))
	require.Zero(t, rawKeys(t, s, 7), "data, applied, version, log, dedup and truncation records all go")
	all, err := s.RecoverPartitions()
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, 6, all[0].Partition)
	require.Equal(t, before, all[1], "the neighbour keeps everything")

	fillPartition(t, s, 7, 1, 1)
	after := recoverOne(t, s, 7)
	require.Equal(t, uint64(1), after.Applied)
	require.Zero(t, after.Truncated)
	require.Zero(t, after.Ver)
	require.Len(t, after.Log, 1)
	require.Equal(t, []DedupRecord{{ID: DedupID{1, 1}, Seq: 1, Status: kvpb.Status_SUCCESS, WallMs: 1001, Sum: OpsSum(testEntry(7, 1).Ops)}}, after.Dedup,
		"only the new entry's record")
}

func TestIngestSnapshot(t *testing.T) {
	s := openTest(t, testOptions())
	for _, p := range []int{1, 2, 3} {
		fillPartition(t, s, p, 1, 6)
		require.NoError(t, s.TruncateLog(p, 2))
		require.NoError(t, s.SetVersion(p, 5, 2, true))
	}
	_, ok := get(t, s, 2, "n", "k2", 0) // cached now
	require.True(t, ok)
	neighbour := recoverOne(t, s, 3)

	entries := []Entry{
		{NS: []byte("n"), Key: []byte("k2"), Record: Record{Seq: 40, Value: []byte("snap")}},
		{NS: []byte("n"), Key: []byte("new"), Record: Record{Seq: 41, ExpiryMs: 99, Value: []byte("x")}},
	}
	dedup := []DedupRecord{
		{ID: DedupID{8, 2}, Seq: 45, Status: kvpb.Status_NOT_FOUND, WallMs: 20},
		{ID: DedupID{8, 1}, Seq: 44, Status: kvpb.Status_SUCCESS, WallMs: 10},
	}
	require.NoError(t, s.IngestSnapshot(2, entries, 50, dedup))

	var got []Entry
	require.NoError(t, s.Scan(2, func(ns, key []byte, r Record) error {
		r.Value = append([]byte(nil), r.Value...)
		got = append(got, Entry{NS: append([]byte(nil), ns...), Key: append([]byte(nil), key...), Record: r})
		return nil
	}))
	require.Equal(t, entries, got, "old keys gone, snapshot keys as sent")
	v, _ := get(t, s, 2, "n", "k2", 0)
	require.Equal(t, "snap", v, "cache dropped")
	rec := recoverOne(t, s, 2)
	require.Equal(t, PartitionState{
		Partition: 2, Applied: 50, Ver: 5, Epoch: 2, Unsynced: true, Truncated: 50,
		Log: []LogEntry{}, Dedup: []DedupRecord{dedup[1], dedup[0]},
	}, rec, "the version record is kept")
	require.Equal(t, neighbour, recoverOne(t, s, 3))

	_, err := s.ApplyEntry(2, LogEntry{Seq: 52}, true, 0)
	require.ErrorIs(t, err, ErrSeqGap)
	_, err = s.ApplyEntry(2, LogEntry{Seq: 51, Ops: []Op{delOp("new")}}, true, 0)
	require.NoError(t, err)
	require.Len(t, recoverOne(t, s, 2).Log, 1, "the log starts after the snapshot")

	// A partition never written before.
	require.NoError(t, s.IngestSnapshot(9, nil, 0, nil))
	require.Equal(t, PartitionState{Partition: 9, Log: []LogEntry{}}, recoverOne(t, s, 9))
	require.ErrorIs(t, s.IngestSnapshot(9, []Entry{{NS: []byte("a\x00")}}, 1, nil), ErrBadNamespace)
}
