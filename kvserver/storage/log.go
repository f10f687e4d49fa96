package storage

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ecskv/ecskv/common/kvpb"
)

// LogEntry is one sequenced write of a partition as its log keeps it: the
// ops applied at Seq, the client request id (Client 0: an internal write,
// never deduplicated), the answer the head computed and the head's wall
// clock (unix ms) when it sequenced the write. Sum fingerprints the
// client's request (OpsSum of its ops before the head resolved them; 0:
// compute it from Ops).
type LogEntry struct {
	Seq       uint64
	Ops       []Op
	Client    uint64
	ClientSeq uint64
	Status    kvpb.Status
	Result    Result
	WallMs    int64
	Sum       uint64
}

// ApplyEntry applies e to partition p as the next entry of its log, in one
// pebble batch committed unsynced (the caller syncs with SyncWAL): the data
// ops (liveness judged at nowMs, as Apply), applied_seq = e.Seq, the log
// record and, for a client write, its dedup record. Writing them together
// is what lets a restart trust them: a crash keeps whole batches only.
//
// At the head (head true) the answer is computed from the first op (put:
// UPDATE over a live record, else SUCCESS; delete: SUCCESS over a live
// record, else NOT_FOUND), stored and returned; elsewhere e.Status is
// stored and returned as given. e.Seq must be applied_seq + 1 (else
// ErrStaleSeq or ErrSeqGap, and nothing is written), so the log has no
// holes. Serialised per partition with the other writers.
func (s *Store) ApplyEntry(p int, e LogEntry, head bool, nowMs int64) (Outcome, error) {
	w := s.NewWriter()
	defer w.Close()
	out, err := w.ApplyEntry(p, e, head, nowMs)
	if err != nil {
		return Outcome{}, err
	}
	return out, w.Commit()
}

// headStatus is the answer to a client write, judged by its first op.
func headStatus(ops []Op, existed []bool) kvpb.Status {
	switch {
	case len(ops) == 0:
		return kvpb.Status_SUCCESS
	case ops[0].Kind == OpPut && existed[0]:
		return kvpb.Status_UPDATE
	case ops[0].Kind == OpDelete && !existed[0]:
		return kvpb.Status_NOT_FOUND
	}
	return kvpb.Status_SUCCESS
}

// TruncateLog deletes partition p's log records with seq <= upto (once
// committed down the chain they are never resent) and records upto as the
// truncation point, in one unsynced batch. A point at or below the current
// one changes nothing, so the log's start never moves back; one above
// applied_seq is ErrTruncateAhead.
func (s *Store) TruncateLog(p int, upto uint64) error {
	w := s.NewWriter()
	defer w.Close()
	if err := w.TruncateLog(p, upto); err != nil {
		return err
	}
	return w.Commit()
}

// maxPointTruncate is the longest span TruncateLog deletes record by record.
// Pebble re-fragments a memtable's range deletions on the next read after
// each new one, so a range deletion per commit (the usual truncation of a
// few entries) made BenchmarkApplyEntryTruncate 18 times slower at 2000
// entries and 50 times at 20000. A long span is rare, and then one range
// deletion is cheaper than its point deletions.
const maxPointTruncate = 64

// deleteLog adds to b the deletion of p's log records cur < seq <= upto:
// records <= cur are gone already, and every one above is present.
func deleteLog(b *pebble.Batch, p int, cur, upto uint64) error {
	if upto-cur <= maxPointTruncate {
		for seq := cur + 1; seq <= upto; seq++ {
			if err := b.Delete(logKey(p, seq), nil); err != nil {
				return fmt.Errorf("storage: batch: %w", err)
			}
		}
		return nil
	}
	lo, hi := logKey(p, cur+1), logKey(p, upto+1)
	if upto == math.MaxUint64 {
		_, hi = kindBounds(p, stateLog)
	}
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	return nil
}

// writeLog adds partition p's log record of e to b, as a kvpb.Update;
// lean: without its op's value (lean.go).
func writeLog(b *pebble.Batch, p int, e *LogEntry, lean bool) error {
	ops := make([]kvpb.Op, len(e.Ops)) // one allocation for every op
	u := &kvpb.Update{
		Partition:     uint32(p),
		Seq:           e.Seq,
		Ops:           make([]*kvpb.Op, len(e.Ops)),
		ClientId:      e.Client,
		ClientSeq:     e.ClientSeq,
		Status:        e.Status,
		WallMs:        e.WallMs,
		Sum:           e.Sum,
		ResultVersion: e.Result.Version,
		ResultValue:   e.Result.Value,
		ResultExisted: e.Result.Existed,
	}
	for i, op := range e.Ops {
		o := &ops[i]
		o.Ns, o.Key, o.Value, o.ExpiryMs = op.NS, op.Key, op.Value, op.ExpiryMs
		var err error
		if o.Kind, err = PBOpKind(op.Kind); err != nil {
			return fmt.Errorf("storage: log record %d/%d: %w", p, e.Seq, err)
		}
		u.Ops[i] = o
	}
	tag := 0
	if lean {
		u.Ops[0].Value, tag = nil, 1
	}
	// Encoded straight into the batch: a whole record is most of a
	// write's bytes (it holds the value).
	k := logKey(p, e.Seq)
	op := b.SetDeferred(len(k), tag+u.SizeVT())
	copy(op.Key, k)
	if lean {
		op.Value[0] = leanTag
	}
	if _, err := u.MarshalToSizedBufferVT(op.Value[tag:]); err != nil {
		return fmt.Errorf("storage: encode log record %d/%d: %w", p, e.Seq, err)
	}
	if err := op.Finish(); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	return nil
}

// decodeLog parses a log record; a lean one (lean true) lacks its op's
// value. The result does not alias v.
func decodeLog(v []byte) (e LogEntry, lean bool, err error) {
	if len(v) > 0 && v[0] == leanTag {
		v, lean = v[1:], true
	}
	var u kvpb.Update
	if err := u.UnmarshalVT(v); err != nil {
		return LogEntry{}, false, fmt.Errorf("log record: %w: %w", ErrCorruptRecord, err)
	}
	e = LogEntry{
		Seq:       u.Seq,
		Ops:       make([]Op, len(u.Ops)),
		Client:    u.ClientId,
		ClientSeq: u.ClientSeq,
		Status:    u.Status,
		Result:    Result{Version: u.ResultVersion, Value: u.ResultValue, Existed: u.ResultExisted},
		WallMs:    u.WallMs,
		Sum:       u.Sum,
	}
	for i, o := range u.Ops {
		k, err := FromPBOpKind(o.Kind)
		if err != nil {
			return LogEntry{}, false, fmt.Errorf("log record %d op %d: %w: %w", u.Seq, i, ErrCorruptRecord, err)
		}
		e.Ops[i] = Op{Kind: k, NS: o.Ns, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	if lean && !isLean(&e) {
		return LogEntry{}, false, fmt.Errorf("log record %d: lean, but not one put: %w", u.Seq, ErrCorruptRecord)
	}
	return e, lean, nil
}

// PBOpKind is the wire kind of a replicated op: a put, a delete or OpNone;
// ops a head must resolve first have none (ErrBadOp).
func PBOpKind(k OpKind) (kvpb.OpKind, error) {
	switch k {
	case OpPut:
		return kvpb.OpKind_OP_PUT, nil
	case OpDelete:
		return kvpb.OpKind_OP_DELETE, nil
	case OpNone:
		return kvpb.OpKind_OP_NONE, nil
	}
	return 0, fmt.Errorf("%v: %w", k, ErrBadOp)
}

// FromPBOpKind is the op kind of a replicated op's wire kind.
func FromPBOpKind(k kvpb.OpKind) (OpKind, error) {
	switch k {
	case kvpb.OpKind_OP_PUT:
		return OpPut, nil
	case kvpb.OpKind_OP_DELETE:
		return OpDelete, nil
	case kvpb.OpKind_OP_NONE:
		return OpNone, nil
	}
	return 0, fmt.Errorf("op kind %d: %w", k, ErrBadOp)
}
