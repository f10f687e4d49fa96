package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// leanRecord reports whether p's log record at seq is stored lean.
func leanRecord(t *testing.T, s *Store, p int, seq uint64) bool {
	t.Helper()
	v, closer, err := s.db.Get(logKey(p, seq))
	require.NoError(t, err)
	defer closer.Close()
	return v[0] == leanTag
}

// TestLeanLogRecords: a single put's log record leaves its value to the
// data record, and every later write of the key (put or delete, in a later
// batch or the same one, after a restart, or bypassing the log) first
// rewrites it whole while it is above the truncation point; a restart
// finds every logged entry with its value.
func TestLeanLogRecords(t *testing.T) {
	const p = 3
	fs := vfs.NewMem()
	open := func() *Store {
		s, err := Open("db", Options{FS: fs, Sync: true, CacheEntries: 100})
		require.NoError(t, err)
		return s
	}
	entry := func(seq uint64, op Op) LogEntry { return LogEntry{Seq: seq, Ops: []Op{op}, Client: 7, ClientSeq: seq} }
	apply := func(s *Store, es ...LogEntry) {
		t.Helper()
		w := s.NewWriter()
		defer w.Close()
		for _, e := range es {
			_, err := w.ApplyEntry(p, e, false, 0)
			require.NoError(t, err)
		}
		require.NoError(t, w.Commit())
	}
	values := func(s *Store) []string {
		t.Helper()
		st := recoverOne(t, s, p)
		var out []string
		for _, e := range st.Log {
			out = append(out, string(e.Ops[0].Value))
		}
		return out
	}

	s := open()
	apply(s, entry(1, putOp("a", "a1", 0)), entry(2, putOp("b", "b2", 0)))
	require.True(t, leanRecord(t, s, p, 1))
	require.True(t, leanRecord(t, s, p, 2))

	apply(s, entry(3, putOp("a", "a3", 0))) // a later batch
	require.False(t, leanRecord(t, s, p, 1), "overwritten: whole again")
	require.True(t, leanRecord(t, s, p, 3))

	apply(s, entry(4, putOp("c", "c4", 0)), entry(5, putOp("c", "c5", 0))) // the same batch
	require.False(t, leanRecord(t, s, p, 4))

	apply(s, entry(6, delOp("b")))
	require.False(t, leanRecord(t, s, p, 2), "a delete keeps the value too")
	require.Equal(t, []string{"a1", "b2", "a3", "c4", "c5", ""}, values(s))

	// After a restart the store still knows which records are lean.
	require.NoError(t, s.Close())
	s = open()
	require.Equal(t, []string{"a1", "b2", "a3", "c4", "c5", ""}, values(s))
	apply(s, entry(7, putOp("a", "a7", 0)))
	require.False(t, leanRecord(t, s, p, 3))

	// Truncated records are not brought back by a later write.
	require.NoError(t, s.TruncateLog(p, 7))
	apply(s, entry(8, putOp("a", "a8", 0)))
	require.Equal(t, []uint64{8}, logSeqs(t, s, p))

	// A write that bypasses the log keeps the values it overwrites.
	_, err := s.Apply(p, 9, []Op{putOp("a", "x", 0)}, 0)
	require.NoError(t, err)
	require.False(t, leanRecord(t, s, p, 8))
	require.NoError(t, s.Close())
	s = open()
	defer s.Close()
	lg, _, err := readLog(s.db, p, 7, 8)
	require.NoError(t, err)
	require.Equal(t, "a8", string(lg[0].Ops[0].Value))
}

// oneLeanPut opens a store on fs and applies one put, a1 to key a, at seq
// 1 of partition p, logged lean.
func oneLeanPut(t *testing.T, fs vfs.FS, p int) *Store {
	t.Helper()
	s, err := Open("db", Options{FS: fs})
	require.NoError(t, err)
	_, err = s.ApplyEntry(p, LogEntry{Seq: 1, Ops: []Op{putOp("a", "a1", 0)}}, false, 0)
	require.NoError(t, err)
	require.True(t, leanRecord(t, s, p, 1))
	return s
}

// TestLeanRecordWithoutItsValue: a lean record whose data record was
// overwritten without keeping its value is corruption, reported by Open.
func TestLeanRecordWithoutItsValue(t *testing.T) {
	const p = 3
	fs := vfs.NewMem()
	s := oneLeanPut(t, fs, p)
	require.NoError(t, s.db.Set(EncodeKey(p, []byte("n"), []byte("a")), AppendRecord(nil, Record{Seq: 5, Value: []byte("x")}), nil))
	require.NoError(t, s.Close())
	_, err := Open("db", Options{FS: fs})
	require.ErrorIs(t, err, ErrCorruptRecord)
	require.ErrorContains(t, err, "partition 3")
}

// TestWholeLogOption: with WholeLog no record is written lean (a version
// from before lean records reads them all), and lean records written
// before still read and keep their values.
func TestWholeLogOption(t *testing.T) {
	const p = 3
	fs := vfs.NewMem()
	require.NoError(t, oneLeanPut(t, fs, p).Close())

	s, err := Open("db", Options{FS: fs, WholeLog: true})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.ApplyEntry(p, LogEntry{Seq: 2, Ops: []Op{putOp("b", "b2", 0)}}, false, 0)
	require.NoError(t, err)
	require.False(t, leanRecord(t, s, p, 2))
	_, err = s.ApplyEntry(p, LogEntry{Seq: 3, Ops: []Op{putOp("a", "a3", 0)}}, false, 0)
	require.NoError(t, err)
	require.False(t, leanRecord(t, s, p, 1), "the old lean record is kept whole")
	var got []string
	for _, e := range recoverOne(t, s, p).Log {
		got = append(got, string(e.Ops[0].Value))
	}
	require.Equal(t, []string{"a1", "b2", "a3"}, got)
}
