package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func putOp(key, val string, expiry int64) Op {
	return Op{Kind: OpPut, NS: []byte("n"), Key: []byte(key), Value: []byte(val), ExpiryMs: expiry}
}

func delOp(key string) Op { return Op{Kind: OpDelete, NS: []byte("n"), Key: []byte(key)} }

// testEntry is the i-th entry of a test history: puts and deletes over a few
// keys, every third one an internal write (no client id).
func testEntry(p int, i uint64) LogEntry {
	op := putOp(fmt.Sprint("k", i%4), fmt.Sprintf("p%d-v%d", p, i), 0)
	if i%5 == 0 {
		op = delOp(fmt.Sprint("k", i%4))
	}
	return LogEntry{Seq: i, Ops: []Op{op}, Client: i % 3, ClientSeq: i, WallMs: 1000 + int64(i)}
}

// fillPartition applies entries from..to of p's test history at the head.
func fillPartition(t testing.TB, s *Store, p int, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		_, err := s.ApplyEntry(p, testEntry(p, i), true, 0)
		require.NoError(t, err)
	}
}

// recoverOne returns the recovered state of partition p (zero if it holds nothing).
func recoverOne(t testing.TB, s *Store, p int) PartitionState {
	t.Helper()
	all, err := s.RecoverPartitions()
	require.NoError(t, err)
	for _, st := range all {
		if st.Partition == p {
			return st
		}
	}
	return PartitionState{Partition: p}
}

// logSeqs returns the seqs of the log records stored for p, whatever the
// truncation point says.
func logSeqs(t testing.TB, s *Store, p int) []uint64 {
	t.Helper()
	var seqs []uint64
	lo, hi := kindBounds(p, stateLog)
	require.NoError(t, iterRange(s.db, p, lo, hi, func(k, v []byte) error {
		e, _, err := decodeLog(v)
		require.NoError(t, err)
		seqs = append(seqs, e.Seq)
		return nil
	}))
	return seqs
}

func TestApplyEntryStatus(t *testing.T) {
	const now = 1000
	steps := []struct {
		name  string
		ops   []Op
		head  bool
		given kvpb.Status // e.Status passed in
		want  kvpb.Status
	}{
		{"head put new", []Op{putOp("a", "1", 0)}, true, 0, kvpb.Status_SUCCESS},
		{"head put over live", []Op{putOp("a", "2", 0)}, true, 0, kvpb.Status_UPDATE},
		{"head delete live", []Op{delOp("a")}, true, 0, kvpb.Status_SUCCESS},
		{"head delete missing", []Op{delOp("a")}, true, kvpb.Status_UPDATE, kvpb.Status_NOT_FOUND},
		{"head put expired", []Op{putOp("b", "1", now-1)}, true, 0, kvpb.Status_SUCCESS},
		{"head put over expired", []Op{putOp("b", "2", 0)}, true, 0, kvpb.Status_SUCCESS},
		{"head judges the first op", []Op{putOp("c", "1", 0), delOp("c")}, true, 0, kvpb.Status_SUCCESS},
		{"head empty batch", nil, true, 0, kvpb.Status_SUCCESS},
		{"replica keeps the given status", []Op{putOp("d", "1", 0)}, false, kvpb.Status_UPDATE, kvpb.Status_UPDATE},
		{"replica delete missing keeps it", []Op{delOp("zz")}, false, kvpb.Status_SUCCESS, kvpb.Status_SUCCESS},
	}
	for _, cache := range []int{0, 100} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: cache})
			for i, st := range steps {
				seq := uint64(i + 1)
				e := LogEntry{Seq: seq, Ops: st.ops, Client: 7, ClientSeq: seq, Status: st.given, WallMs: 500 + int64(i)}
				got, err := s.ApplyEntry(2, e, st.head, now)
				require.NoError(t, err, st.name)
				require.Equal(t, st.want, got.Status, st.name)

				rec := recoverOne(t, s, 2)
				require.Equal(t, seq, rec.Applied, st.name)
				require.Len(t, rec.Log, int(seq), st.name)
				require.Equal(t, st.want, rec.Log[i].Status, st.name+": log record")
				d := rec.Dedup[len(rec.Dedup)-1]
				require.Equal(t, DedupRecord{ID: DedupID{7, seq}, Seq: seq, Status: st.want, WallMs: e.WallMs, Sum: OpsSum(e.Ops)}, d, st.name)
			}
			v, ok := get(t, s, 2, "n", "b", now)
			require.True(t, ok)
			require.Equal(t, "2", v)
			_, ok = get(t, s, 2, "n", "c", now)
			require.False(t, ok, "later ops of the entry apply too")
		})
	}
}

func TestApplyEntryRejects(t *testing.T) {
	s := openTest(t, testOptions())
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := s.ApplyEntry(1, LogEntry{Seq: seq, Ops: []Op{putOp("k", "v", 0)}}, true, 0)
		require.NoError(t, err)
	}
	tests := []struct {
		name    string
		p       int
		e       LogEntry
		wantErr error
	}{
		{"replayed seq", 1, LogEntry{Seq: 3}, ErrStaleSeq},
		{"older seq", 1, LogEntry{Seq: 1}, ErrStaleSeq},
		{"gap", 1, LogEntry{Seq: 5}, ErrSeqGap},
		{"bad kind", 1, LogEntry{Seq: 4, Ops: []Op{{Kind: 9}}}, ErrBadOp},
		{"nul namespace", 1, LogEntry{Seq: 4, Ops: []Op{{Kind: OpPut, NS: []byte("a\x00")}}}, ErrBadNamespace},
		{"bad partition", MaxPartitions, LogEntry{Seq: 1}, ErrBadPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ApplyEntry(tt.p, tt.e, true, 0)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
	rec := recoverOne(t, s, 1)
	require.Equal(t, uint64(3), rec.Applied)
	require.Len(t, rec.Log, 3)
}

// TestLogRecordIsUpdate checks the log record is a kvpb.Update others can read.
func TestLogRecordIsUpdate(t *testing.T) {
	s := openTest(t, testOptions())
	e := LogEntry{
		Seq:       1,
		Ops:       []Op{putOp("k", "v", 1234), delOp("j")},
		Client:    9,
		ClientSeq: 4,
		Status:    kvpb.Status_UPDATE,
		WallMs:    777,
		Sum:       42,
	}
	_, err := s.ApplyEntry(5, e, false, 0)
	require.NoError(t, err)
	v, closer, err := s.db.Get(logKey(5, 1))
	require.NoError(t, err)
	var u kvpb.Update
	require.NoError(t, proto.Unmarshal(v, &u))
	require.NoError(t, closer.Close())
	want := &kvpb.Update{
		Partition: 5, Seq: 1, ClientId: 9, ClientSeq: 4, Status: kvpb.Status_UPDATE, WallMs: 777, Sum: 42,
		Ops: []*kvpb.Op{
			{Kind: kvpb.OpKind_OP_PUT, Ns: []byte("n"), Key: []byte("k"), Value: []byte("v"), ExpiryMs: 1234},
			{Kind: kvpb.OpKind_OP_DELETE, Ns: []byte("n"), Key: []byte("j")},
		},
	}
	require.True(t, proto.Equal(want, &u), "got %v", &u)
	require.Equal(t, []LogEntry{e}, recoverOne(t, s, 5).Log)
}

func TestTruncateLog(t *testing.T) {
	const n = 200
	s := openTest(t, testOptions())
	fillPartition(t, s, 3, 1, n)
	fillPartition(t, s, 4, 1, 3)
	steps := []struct {
		name    string
		upto    uint64
		wantErr error
		want    uint64 // truncation point after the step
	}{
		{"nothing", 0, nil, 0},
		{"prefix", 4, nil, 4},
		{"backwards is ignored", 2, nil, 4},
		{"same point again", 4, nil, 4},
		{"beyond applied", n + 1, ErrTruncateAhead, 4},
		{"short span, record by record", 4 + maxPointTruncate, nil, 4 + maxPointTruncate},
		{"long span, one range deletion", 5 + 2*maxPointTruncate, nil, 5 + 2*maxPointTruncate},
		{"everything", n, nil, n},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.ErrorIs(t, s.TruncateLog(3, st.upto), st.wantErr)
			rec := recoverOne(t, s, 3)
			require.Equal(t, st.want, rec.Truncated)
			var want []uint64
			for seq := st.want + 1; seq <= n; seq++ {
				want = append(want, seq)
			}
			require.Equal(t, want, logSeqs(t, s, 3), "stored records")
			require.Len(t, rec.Log, len(want))
			require.Equal(t, []uint64{1, 2, 3}, logSeqs(t, s, 4), "other partitions keep their log")
		})
	}
	_, err := s.ApplyEntry(3, LogEntry{Seq: n + 1}, true, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{n + 1}, logSeqs(t, s, 3), "the log goes on after a full truncation")
}
