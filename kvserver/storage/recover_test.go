package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

// history models partition p after entries 1..n of its test history.
type history struct {
	data    map[string]string // ns/key -> value
	entries []LogEntry        // with the status the head computes
	dedup   []DedupRecord     // oldest first
}

func modelHistory(p int, n uint64) history {
	h := history{data: map[string]string{}, entries: []LogEntry{}}
	for i := uint64(1); i <= n; i++ {
		e := testEntry(p, i)
		op := e.Ops[0]
		k := string(op.NS) + "/" + string(op.Key)
		_, live := h.data[k]
		switch {
		case op.Kind == OpPut && live:
			e.Status = kvpb.Status_UPDATE
		case op.Kind == OpDelete && !live:
			e.Status = kvpb.Status_NOT_FOUND
		default:
			e.Status = kvpb.Status_SUCCESS
		}
		if op.Kind == OpPut {
			h.data[k] = string(op.Value)
		} else {
			delete(h.data, k)
		}
		e.Sum = OpsSum(e.Ops)
		h.entries = append(h.entries, e)
		if e.Client != 0 {
			h.dedup = append(h.dedup, DedupRecord{ID: DedupID{e.Client, e.ClientSeq}, Seq: e.Seq, Status: e.Status, WallMs: e.WallMs, Sum: OpsSum(e.Ops)})
		}
	}
	return h
}

// check asserts that st and the data of s are the model's, with the log
// truncated at truncated.
func (h history) check(t testing.TB, s *Store, st PartitionState, truncated uint64) {
	t.Helper()
	require.Equal(t, uint64(len(h.entries)), st.Applied, "applied")
	require.Equal(t, truncated, st.Truncated, "truncated")
	require.Equal(t, h.entries[truncated:], st.Log, "log")
	require.Equal(t, h.dedup, st.Dedup, "dedup")
	got := map[string]string{}
	require.NoError(t, s.Scan(st.Partition, func(ns, key []byte, r Record) error {
		require.LessOrEqual(t, r.Seq, st.Applied, "record newer than applied")
		got[string(ns)+"/"+string(key)] = string(r.Value)
		return nil
	}))
	require.Equal(t, h.data, got, "data")
}

func TestRecoverPartitions(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", Options{FS: fs, CacheEntries: 10})
	require.NoError(t, err)
	fillPartition(t, s, 0, 1, 12)
	require.NoError(t, s.TruncateLog(0, 5))
	require.NoError(t, s.SetVersion(0, 6, 3, false))
	fillPartition(t, s, 2, 1, 3)
	require.NoError(t, s.Ingest(3, []Entry{{NS: []byte("n"), Key: []byte("k"), Record: Record{Seq: 1}}}, 0))
	require.NoError(t, s.SetVersion(MaxPartitions-1, 2, 1, true))
	require.NoError(t, s.Close())

	s = openTest(t, Options{FS: fs, CacheEntries: 10})
	all, err := s.RecoverPartitions()
	require.NoError(t, err)
	require.Len(t, all, 4)

	require.Equal(t, 0, all[0].Partition)
	modelHistory(0, 12).check(t, s, all[0], 5)
	require.Equal(t, []uint64{6, 3}, []uint64{all[0].Ver, all[0].Epoch})
	require.False(t, all[0].Unsynced)

	require.Equal(t, 2, all[1].Partition)
	modelHistory(2, 3).check(t, s, all[1], 0)

	require.Equal(t, PartitionState{Partition: 3, Log: []LogEntry{}}, all[2], "data only")
	require.Equal(t, PartitionState{Partition: MaxPartitions - 1, Ver: 2, Epoch: 1, Unsynced: true, Log: []LogEntry{}}, all[3],
		"state only")

	require.NoError(t, s.Close())
	_, err = s.RecoverPartitions()
	require.ErrorIs(t, err, ErrClosed)
}

// TestRecoverApplied: a chain entry's batch writes no applied_seq record,
// so the applied seq a restart finds is the last log record, or the
// truncation point once the log is gone, or what a write without a log
// (a snapshot) recorded, whichever is highest.
func TestRecoverApplied(t *testing.T) {
	const p = 4
	s := openTest(t, testOptions())
	recovered := func() PartitionState {
		t.Helper()
		all, err := s.RecoverPartitions()
		require.NoError(t, err)
		require.Len(t, all, 1)
		return all[0]
	}
	fillPartition(t, s, p, 1, 5)
	st := recovered()
	require.Equal(t, uint64(5), st.Applied)
	require.Len(t, st.Log, 5)

	require.NoError(t, s.TruncateLog(p, 5))
	st = recovered()
	require.Equal(t, []uint64{5, 5}, []uint64{st.Applied, st.Truncated})
	require.Empty(t, st.Log)

	require.NoError(t, s.FinishSnapshot(p, 9, nil))
	fillPartition(t, s, p, 10, 11)
	st = recovered()
	require.Equal(t, []uint64{11, 9}, []uint64{st.Applied, st.Truncated})
	require.Len(t, st.Log, 2)

	// Read back without the in-memory mirror, as after a restart.
	s.applied[p].Store(0)
	got, err := s.AppliedSeq(p)
	require.NoError(t, err)
	require.Equal(t, uint64(11), got)
}

func TestRecoverPartitionsCorrupt(t *testing.T) {
	const p = 4
	set := func(k, v []byte) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) { require.NoError(t, s.db.Set(k, v, nil)) }
	}
	del := func(seq uint64) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) { require.NoError(t, s.db.Delete(logKey(p, seq), nil)) }
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, s *Store)
		wantErr error
	}{
		{"written by Apply, without a log", func(t *testing.T, s *Store) {
			_, err := s.Apply(p, 6, nil, 0)
			require.NoError(t, err)
		}, ErrLogGap},
		{"first record missing", del(3), ErrLogGap},
		{"middle record missing", del(4), ErrLogGap},
		{"undecodable record", set(logKey(p, 4), []byte{0xFF, 0xFF}), ErrCorruptRecord},
		{"record of another seq", func(t *testing.T, s *Store) {
			v, closer, err := s.db.Get(logKey(p, 3))
			require.NoError(t, err)
			require.NoError(t, s.db.Set(logKey(p, 4), v, nil))
			require.NoError(t, closer.Close())
		}, ErrCorruptRecord},
		{"bad dedup record", set(dedupKey(p, DedupID{1, 1}), []byte{1}), ErrCorruptRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testOptions())
			fillPartition(t, s, 1, 1, 3)
			fillPartition(t, s, p, 1, 5)
			require.NoError(t, s.TruncateLog(p, 2))
			tt.mutate(t, s)
			_, err := s.RecoverPartitions()
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, fmt.Sprintf("partition %d", p))
		})
	}
}
