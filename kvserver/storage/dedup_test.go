package storage

import (
	"slices"
	"testing"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

func TestDedupRecords(t *testing.T) {
	s := openTest(t, testOptions())
	// Written out of time order on purpose: the order comes from WallMs,
	// then the client id and the client seq.
	writes := []struct {
		client, cseq uint64
		wall         int64
	}{
		{client: 5, cseq: 1, wall: 300},
		{client: 0, cseq: 0, wall: 100}, // internal write: no record
		{client: 9, cseq: 1, wall: 100},
		{client: 2, cseq: 2, wall: 100},
		{client: 2, cseq: 1, wall: 100},
		{client: 1, cseq: 1, wall: 200},
	}
	for i, w := range writes {
		e := LogEntry{Seq: uint64(i + 1), Ops: []Op{putOp("k", "v", 0)}, Client: w.client, ClientSeq: w.cseq, WallMs: w.wall}
		_, err := s.ApplyEntry(4, e, true, 0)
		require.NoError(t, err)
	}
	rec := func(client, cseq, seq uint64, st kvpb.Status, wall int64) DedupRecord {
		return DedupRecord{ID: DedupID{client, cseq}, Seq: seq, Status: st, WallMs: wall, Sum: OpsSum([]Op{putOp("k", "v", 0)})}
	}
	steps := []struct {
		name   string
		forget []DedupID
		want   []DedupRecord
	}{
		{"as written", nil, []DedupRecord{
			rec(2, 1, 5, kvpb.Status_UPDATE, 100),
			rec(2, 2, 4, kvpb.Status_UPDATE, 100),
			rec(9, 1, 3, kvpb.Status_UPDATE, 100),
			rec(1, 1, 6, kvpb.Status_UPDATE, 200),
			rec(5, 1, 1, kvpb.Status_SUCCESS, 300),
		}},
		{"forget some and an absent one", []DedupID{{2, 2}, {9, 1}, {42, 1}}, []DedupRecord{
			rec(2, 1, 5, kvpb.Status_UPDATE, 100),
			rec(1, 1, 6, kvpb.Status_UPDATE, 200),
			rec(5, 1, 1, kvpb.Status_SUCCESS, 300),
		}},
		{"forget nothing", []DedupID{}, []DedupRecord{
			rec(2, 1, 5, kvpb.Status_UPDATE, 100),
			rec(1, 1, 6, kvpb.Status_UPDATE, 200),
			rec(5, 1, 1, kvpb.Status_SUCCESS, 300),
		}},
		{"forget the rest", []DedupID{{2, 1}, {1, 1}, {5, 1}}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.NoError(t, s.ForgetDedup(4, st.forget))
			got, err := s.DedupRecords(4)
			require.NoError(t, err)
			require.Equal(t, st.want, got)
			require.Equal(t, st.want, recoverOne(t, s, 4).Dedup)
			// The point lookup agrees with the table, present or not.
			for _, w := range writes {
				id := DedupID{w.client, w.cseq}
				got, ok, err := s.Dedup(4, id)
				require.NoError(t, err)
				i := slices.IndexFunc(st.want, func(r DedupRecord) bool { return r.ID == id })
				require.Equal(t, i >= 0, ok, "record of %v", id)
				if ok {
					require.Equal(t, st.want[i], got)
				}
			}
		})
	}
	other, err := s.DedupRecords(3)
	require.NoError(t, err)
	require.Empty(t, other, "records are per partition")
}

func TestDedupRoundTrip(t *testing.T) {
	tests := []DedupRecord{
		{},
		{ID: DedupID{1, 2}, Seq: 3, Status: kvpb.Status_NOT_FOUND, WallMs: 1_700_000_000_000},
		{ID: DedupID{^uint64(0), ^uint64(0)}, Seq: ^uint64(0), Status: kvpb.Status(-1), WallMs: -5},
	}
	s := openTest(t, testOptions())
	const p = MaxPartitions - 1 // the last partition's state keys end the key space
	for _, r := range tests {
		b := s.db.NewBatch()
		require.NoError(t, writeDedup(b, p, r))
		require.NoError(t, b.Commit(nil))
		got, err := s.DedupRecords(p)
		require.NoError(t, err)
		require.Equal(t, []DedupRecord{r}, got)
		require.NoError(t, s.ForgetDedup(p, []DedupID{r.ID}))
	}
	_, err := decodeDedup(dedupKey(1, DedupID{}), make([]byte, dedupValueLen-1))
	require.ErrorIs(t, err, ErrCorruptRecord)
}

// TestOpsSum: a write's fingerprint changes with its kind, key or value but
// not its expiry (a retried put with a TTL gets a new expiry at the head),
// and survives storage; a record of the old layout reads with no sum.
func TestOpsSum(t *testing.T) {
	base := []Op{putOp("k", "v", 10)}
	sum := OpsSum(base)
	require.NotZero(t, sum)
	require.Equal(t, sum, OpsSum([]Op{putOp("k", "v", 99)}), "expiry is not part of it")
	for name, ops := range map[string][]Op{
		"value":  {putOp("k", "w", 10)},
		"key":    {putOp("j", "v", 10)},
		"delete": {delOp("k")},
		"ns":     {{Kind: OpPut, NS: []byte("m"), Key: []byte("k"), Value: []byte("v")}},
		"split":  {{Kind: OpPut, NS: []byte("n"), Key: []byte("kv")}},
	} {
		require.NotEqual(t, sum, OpsSum(ops), name)
	}

	s := openTest(t, testOptions())
	_, err := s.ApplyEntry(1, LogEntry{Seq: 1, Ops: base, Client: 3, ClientSeq: 4}, true, 0)
	require.NoError(t, err)
	r, ok, err := s.Dedup(1, DedupID{3, 4})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, sum, r.Sum)

	old := make([]byte, dedupValueLenV1)
	old[7] = 1 // seq 1
	r, err = decodeDedup(dedupKey(1, DedupID{3, 4}), old)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.Seq)
	require.Zero(t, r.Sum)
}
