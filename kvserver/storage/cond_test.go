package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

// headApply applies op as the next client write of partition 1 at the
// head, at wall clock 1000, and returns the outcome.
func headApply(t *testing.T, s *Store, seq *uint64, op Op) Outcome {
	t.Helper()
	*seq++
	out, err := s.ApplyEntry(1, LogEntry{Seq: *seq, Ops: []Op{op}, Client: 1, ClientSeq: *seq, WallMs: 1000}, true, 1000)
	require.NoError(t, err)
	return out
}

// TestResolve: conditional writes, increments and expiry changes resolve
// against the key's record, in the cache or only in pebble alike, into
// the plain ops members apply.
func TestResolve(t *testing.T) {
	for _, cache := range []int{0, 1000} {
		s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: cache})
		var seq uint64
		k := func(kind OpKind) Op { return Op{Kind: kind, NS: []byte("n"), Key: []byte("k")} }
		put := func(v string, c Cond) Op { o := k(OpPut); o.Value, o.Cond = []byte(v), c; return o }

		out := headApply(t, s, &seq, put("5", Cond{Kind: CondAbsent}))
		require.Equal(t, kvpb.Status_SUCCESS, out.Status)
		require.Equal(t, []Op{put("5", Cond{})}, out.Ops, "resolved to a plain put")
		v1 := seq

		out = headApply(t, s, &seq, put("6", Cond{Kind: CondAbsent}))
		require.Equal(t, kvpb.Status_CONDITION_FAILED, out.Status)
		require.Equal(t, Result{Version: v1, Existed: true}, out.Result)
		require.Equal(t, []Op{k(OpNone)}, out.Ops, "a failed condition writes nothing")

		incr := k(OpIncr)
		incr.Delta = 10
		out = headApply(t, s, &seq, incr)
		require.Equal(t, kvpb.Status_UPDATE, out.Status, "cache %d", cache)
		require.Equal(t, "15", string(out.Result.Value))

		out = headApply(t, s, &seq, put("x", Cond{Kind: CondValue, Value: []byte("15")}))
		require.Equal(t, kvpb.Status_UPDATE, out.Status)
		out = headApply(t, s, &seq, incr)
		require.Equal(t, kvpb.Status_NOT_AN_INTEGER, out.Status)
		require.Equal(t, []Op{k(OpNone)}, out.Ops)

		prev := put("y", Cond{Kind: CondVersion, Version: seq - 1})
		prev.ReturnPrev = true
		out = headApply(t, s, &seq, prev)
		require.Equal(t, kvpb.Status_UPDATE, out.Status)
		require.Equal(t, "x", string(out.Result.Value), "the value replaced")

		exp := k(OpExpire)
		exp.ExpiryMs = 5000
		out = headApply(t, s, &seq, exp)
		require.Equal(t, kvpb.Status_UPDATE, out.Status)
		require.Equal(t, []Op{{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Value: []byte("y"), ExpiryMs: 5000}}, out.Ops)

		rec, ok, err := s.Get(1, []byte("n"), []byte("k"), 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, Record{Seq: seq, ExpiryMs: 5000, Value: []byte("y")}, rec)

		// The log keeps the resolved ops and the answer; the dedup record
		// the answer and the request's fingerprint.
		ps := recoverOne(t, s, 1)
		last := ps.Log[len(ps.Log)-1]
		require.Equal(t, out.Ops, last.Ops)
		require.Equal(t, OpsSum([]Op{exp}), last.Sum)
		d := ps.Dedup[len(ps.Dedup)-1]
		require.Equal(t, OpsSum([]Op{exp}), d.Sum)
		fail := ps.Dedup[1]
		require.Equal(t, kvpb.Status_CONDITION_FAILED, fail.Status)
		require.Equal(t, Result{Version: v1, Existed: true}, fail.Result)
	}
}

// TestResolveSeesTheBatch: a conditional write judges by the writes of the
// same batch before it.
func TestResolveSeesTheBatch(t *testing.T) {
	s := openTest(t, Options{FS: vfs.NewMem()})
	w := s.NewWriter()
	defer w.Close()
	op := Op{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Value: []byte("1"), Cond: Cond{Kind: CondAbsent}}
	out, err := w.ApplyEntry(1, LogEntry{Seq: 1, Ops: []Op{op}}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, out.Status)
	out, err = w.ApplyEntry(1, LogEntry{Seq: 2, Ops: []Op{op}}, true, 0)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_CONDITION_FAILED, out.Status)
	incr := Op{Kind: OpIncr, NS: []byte("n"), Key: []byte("k"), Delta: 2}
	out, err = w.ApplyEntry(1, LogEntry{Seq: 3, Ops: []Op{incr}}, true, 0)
	require.NoError(t, err)
	require.Equal(t, "3", string(out.Result.Value), "the batch's put, not pebble's nothing")
	require.NoError(t, w.Commit())
}

// TestUnresolvedOpsStayAtTheHead: a member refuses an op only a head can
// resolve, and so does a write of several ops.
func TestUnresolvedOpsStayAtTheHead(t *testing.T) {
	s := openTest(t, testOptions())
	incr := Op{Kind: OpIncr, NS: []byte("n"), Key: []byte("k"), Delta: 1}
	_, err := s.ApplyEntry(1, LogEntry{Seq: 1, Ops: []Op{incr}}, false, 0)
	require.ErrorIs(t, err, ErrBadOp)
	_, err = s.ApplyEntry(1, LogEntry{Seq: 1, Ops: []Op{incr, incr}}, true, 0)
	require.ErrorIs(t, err, ErrBadOp)
	_, err = s.ApplyEntry(1, LogEntry{Seq: 1, Ops: []Op{{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Cond: Cond{Kind: 9}}}}, true, 0)
	require.ErrorIs(t, err, ErrBadOp)
}
