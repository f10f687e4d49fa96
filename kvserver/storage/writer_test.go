package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

// TestWriterSeesItsOwnWrites: entries of several partitions in one batch
// are checked and answered as if each earlier one had committed, and none
// is visible before Commit.
func TestWriterSeesItsOwnWrites(t *testing.T) {
	s := openTest(t, testOptions())
	fillPartition(t, s, 2, 1, 3)
	w := s.NewWriter()
	defer w.Close()

	st, err := w.ApplyEntry(1, LogEntry{Seq: 1, Ops: []Op{putOp("k", "a", 0)}, Client: 7, ClientSeq: 1}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, st.Status)
	st, err = w.ApplyEntry(1, LogEntry{Seq: 2, Ops: []Op{putOp("k", "b", 0)}, Client: 7, ClientSeq: 2}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_UPDATE, st.Status, "the first put of the batch makes k live")
	st, err = w.ApplyEntry(1, LogEntry{Seq: 3, Ops: []Op{delOp("k")}}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, st.Status)
	st, err = w.ApplyEntry(1, LogEntry{Seq: 4, Ops: []Op{delOp("k")}}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_NOT_FOUND, st.Status, "the batch's delete removed k")

	_, err = w.ApplyEntry(1, LogEntry{Seq: 4, Ops: []Op{putOp("x", "y", 0)}}, true, 0)
	require.ErrorIs(t, err, ErrStaleSeq, "seq 4 is applied in this batch")
	_, err = w.ApplyEntry(1, LogEntry{Seq: 6, Ops: []Op{putOp("x", "y", 0)}}, true, 0)
	require.ErrorIs(t, err, ErrSeqGap)
	require.ErrorIs(t, w.TruncateLog(1, 5), ErrTruncateAhead)

	_, err = w.ApplyEntry(2, LogEntry{Seq: 4, Ops: []Op{putOp("k", "c", 0)}}, false, 0)
	require.NoError(t, err, "a refused entry leaves the writer usable")
	require.NoError(t, w.TruncateLog(1, 2))
	require.NoError(t, w.TruncateLog(1, 1), "an older point changes nothing")
	require.NoError(t, w.ForgetDedup(1, []DedupID{{7, 1}}))

	applied, err := s.AppliedSeq(1)
	require.NoError(t, err)
	require.Zero(t, applied, "nothing is published before Commit")
	_, ok, err := s.Get(1, []byte("n"), []byte("k"), 0)
	require.NoError(t, err)
	require.False(t, ok)

	require.NoError(t, w.Commit())
	for p, want := range map[int]uint64{1: 4, 2: 4} {
		applied, err := s.AppliedSeq(p)
		require.NoError(t, err)
		require.Equal(t, want, applied, "partition %d", p)
	}
	require.Equal(t, []uint64{3, 4}, logSeqs(t, s, 1))
	_, ok, err = s.Dedup(1, DedupID{7, 1})
	require.NoError(t, err)
	require.False(t, ok, "forgotten in the batch that wrote it")
	d, ok, err := s.Dedup(1, DedupID{7, 2})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(2), d.Seq)
	r, ok, err := s.Get(2, []byte("n"), []byte("k"), 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "c", string(r.Value))

	_, err = w.ApplyEntry(1, LogEntry{Seq: 5, Ops: []Op{putOp("k", "d", 0)}}, true, 0)
	require.Error(t, err, "a committed writer takes nothing more")
}

// TestWriterCommitsWholeOrNothing: a crash keeps a writer's batch entirely
// or not at all, with its applied seq, log and dedup records together.
func TestWriterCommitsWholeOrNothing(t *testing.T) {
	for _, synced := range []bool{false, true} {
		fs := vfs.NewCrashableMem()
		s, err := Open("n1", crashOpts(fs))
		require.NoError(t, err)
		w := s.NewWriter()
		for p := 1; p <= 3; p++ {
			for seq := uint64(1); seq <= 5; seq++ {
				_, err := w.ApplyEntry(p, LogEntry{Seq: seq, Ops: []Op{putOp("k", "v", 0)}, Client: 9, ClientSeq: seq}, true, 0)
				require.NoError(t, err)
			}
		}
		require.NoError(t, w.Commit())
		w.Close()
		if synced {
			require.NoError(t, s.SyncWAL())
		}
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		require.NoError(t, s.Close())

		s2, err := Open("n1", crashOpts(img))
		require.NoError(t, err)
		want := uint64(0)
		if synced {
			want = 5
		}
		for p := 1; p <= 3; p++ {
			ps := recoverOne(t, s2, p)
			require.Equal(t, want, ps.Applied, "partition %d, synced %v", p, synced)
			require.Len(t, ps.Log, int(want))
			require.Len(t, ps.Dedup, int(want))
		}
		require.NoError(t, s2.Close())
	}
}
