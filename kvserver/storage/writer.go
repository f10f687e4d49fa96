package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Writer gathers the chain's storage writes, of any partitions, into one
// pebble batch committed unsynced at once: a server applies everything one
// step of its chain state machine asked for with one commit and one WAL
// write, not one of each per entry. Each method checks its input against
// the state the writer's earlier writes leave (applied seq, truncation
// point, live keys), as if they had committed; nothing is visible to
// readers before Commit, and a crash keeps the whole batch or none of it.
//
// A method that refuses its input (a stale seq, a bad op) writes nothing
// and the writer stays usable; one that fails halfway (a read error) spoils
// the writer, whose Commit then fails. The writers of a store are
// serialised by its caller, as every writer of a partition is.
type Writer struct {
	s *Store
	b *pebble.Batch
	// applied and truncated are the seqs this batch sets, by partition.
	applied, truncated map[int]uint64
	// live is the record this batch leaves in data keys it writes (Seq 0:
	// none live), so a later op of the batch judges by it.
	live map[string]Record
	ups  []partUpdates
	// leanUps are the changes to the store's lean records (lean.go), by
	// data key: the entry a key backs once the batch commits, or nil.
	leanUps map[leanKey]*LogEntry
	err     error // spoilt: Commit fails with it
}

// partUpdates are one partition's cache updates, made once the batch
// commits.
type partUpdates struct {
	p   int
	ups []cacheUpdate
}

// NewWriter returns an empty writer. Close it after Commit (or instead).
func (s *Store) NewWriter() *Writer {
	return &Writer{s: s, b: s.db.NewBatch(), applied: map[int]uint64{}, truncated: map[int]uint64{}, live: map[string]Record{}}
}

// Empty reports whether the writer holds no write.
func (w *Writer) Empty() bool { return w.b.Empty() && len(w.applied) == 0 }

// Len is the size of the batch so far, in bytes.
func (w *Writer) Len() int { return w.b.Len() }

// appliedSeq is p's applied seq as this batch leaves it.
func (w *Writer) appliedSeq(p int) (uint64, error) {
	if seq, ok := w.applied[p]; ok {
		return seq, nil
	}
	return w.s.AppliedSeq(p)
}

// ApplyEntry adds e to the batch as the next entry of partition p's log:
// the data ops (liveness judged at nowMs), the log record and, for a client
// write, its dedup record; the log record is what records e.Seq as applied
// (readApplied).
//
// At the head (head true) the answer is computed and returned with the ops
// as written: a conditional write, an increment or an expiry change (the
// entry's only op) is resolved against the key's current record into the
// plain op members apply (Outcome); otherwise the answer comes from the
// first op (put: UPDATE over a live record, else SUCCESS; delete: SUCCESS
// over a live record, else NOT_FOUND). Elsewhere e's status and result are
// stored and returned as given. e.Seq must be applied_seq + 1 (else
// ErrStaleSeq or ErrSeqGap, and nothing is written), so the log has no
// holes.
func (w *Writer) ApplyEntry(p int, e LogEntry, head bool, nowMs int64) (Outcome, error) {
	if err := w.usable(p); err != nil {
		return Outcome{}, err
	}
	if err := validateOps(e.Ops, head); err != nil {
		return Outcome{}, err
	}
	applied, err := w.appliedSeq(p)
	if err != nil {
		return Outcome{}, err
	}
	switch {
	case e.Seq <= applied:
		return Outcome{}, fmt.Errorf("partition %d seq %d <= applied %d: %w", p, e.Seq, applied, ErrStaleSeq)
	case e.Seq > applied+1:
		return Outcome{}, fmt.Errorf("partition %d seq %d after applied %d: %w", p, e.Seq, applied, ErrSeqGap)
	}
	if e.Sum == 0 {
		e.Sum = OpsSum(e.Ops) // before resolving: the client's request
	}
	resolved := false
	if head && len(e.Ops) == 1 && HeadOp(e.Ops[0]) {
		if err := w.resolve(p, &e, nowMs); err != nil {
			return Outcome{}, w.spoil(err)
		}
		resolved = true
	}
	if err := w.keepLeanValues(p, e.Ops); err != nil {
		return Outcome{}, w.spoil(err)
	}
	existed, ups, err := w.s.writeOps(w.b, p, e.Seq, e.Ops, nowMs, w.live, head && !resolved)
	if err != nil {
		return Outcome{}, w.spoil(err)
	}
	if head && !resolved {
		e.Status = headStatus(e.Ops, existed)
	}
	lean := !w.s.wholeLog && isLean(&e)
	if err := writeLog(w.b, p, &e, lean); err != nil {
		return Outcome{}, w.spoil(err)
	}
	if lean {
		le := e
		op := e.Ops[0]
		w.setLean(p, string(appendKeyUnchecked(nil, p, op.NS, op.Key)), &le)
	}
	if e.Client != 0 {
		d := DedupRecord{ID: DedupID{e.Client, e.ClientSeq}, Seq: e.Seq, Status: e.Status, WallMs: e.WallMs, Sum: e.Sum, Result: e.Result}
		if err := writeDedup(w.b, p, d); err != nil {
			return Outcome{}, w.spoil(err)
		}
	}
	w.applied[p] = e.Seq
	if len(ups) > 0 {
		w.ups = append(w.ups, partUpdates{p, ups})
	}
	return Outcome{Status: e.Status, Result: e.Result, Ops: e.Ops}, nil
}

// Cached returns the record key holds in storage when the cache has it
// and no write of this batch changed it: it never reads pebble (a miss is
// reported as unknown, false). The value must not be modified.
func (w *Writer) Cached(p int, ns, key []byte) (Record, bool) {
	k := appendKeyUnchecked(make([]byte, 0, 3+len(ns)+len(key)), p, ns, key)
	if _, ok := w.live[lookupKey(k)]; ok {
		return Record{}, false
	}
	return w.s.cache.peek(k)
}

// resolve replaces e's only op by what it resolves to against the key's
// current record, and sets e's status and result. Liveness is judged at
// e.WallMs, the head's clock when it sequenced the write, so the head can
// check before that the key is not within the clock-skew window of its
// expiry (kvserver), and a replay of the batch resolves it alike.
func (w *Writer) resolve(p int, e *LogEntry, nowMs int64) error {
	if e.WallMs != 0 {
		nowMs = e.WallMs
	}
	op := e.Ops[0]
	k := appendKeyUnchecked(nil, p, op.NS, op.Key)
	cur, live, err := w.s.recordBefore(k, w.live, nowMs, true)
	if err != nil {
		return err
	}
	var out Op
	out, e.Status, e.Result = resolve(op, cur, live)
	e.Ops = []Op{out}
	return nil
}

// TruncateLog adds the deletion of partition p's log records with seq <=
// upto (once committed down the chain they are never resent) and the new
// truncation point. A point at or below the current one changes nothing,
// so the log's start never moves back; one above applied_seq is
// ErrTruncateAhead.
func (w *Writer) TruncateLog(p int, upto uint64) error {
	if err := w.usable(p); err != nil {
		return err
	}
	applied, err := w.appliedSeq(p)
	if err != nil {
		return err
	}
	if upto > applied {
		return fmt.Errorf("partition %d truncate %d > applied %d: %w", p, upto, applied, ErrTruncateAhead)
	}
	cur, err := w.truncatedSeq(p)
	if err != nil {
		return err
	}
	if upto <= cur {
		return nil
	}
	if err := deleteLog(w.b, p, cur, upto); err != nil {
		return w.spoil(err)
	}
	if err := setUint64(w.b, stateKey(p, stateTruncate), upto); err != nil {
		return w.spoil(err)
	}
	w.truncated[p] = upto
	return nil
}

// truncatedSeq is p's truncation point as this batch leaves it.
func (w *Writer) truncatedSeq(p int) (uint64, error) {
	if seq, ok := w.truncated[p]; ok {
		return seq, nil
	}
	return w.s.truncatedSeq(p)
}

// ForgetDedup adds the deletion of partition p's dedup records of ids.
func (w *Writer) ForgetDedup(p int, ids []DedupID) error {
	if err := w.usable(p); err != nil {
		return err
	}
	for _, id := range ids {
		if err := w.b.Delete(dedupKey(p, id), nil); err != nil {
			return w.spoil(fmt.Errorf("storage: batch: %w", err))
		}
	}
	return nil
}

// SetVersion adds partition p's chain version record (see Store.SetVersion).
func (w *Writer) SetVersion(p int, ver, epoch uint64, unsynced bool) error {
	if err := w.usable(p); err != nil {
		return err
	}
	if err := w.b.Set(stateKey(p, stateMeta), versionValue(ver, epoch, unsynced), nil); err != nil {
		return w.spoil(fmt.Errorf("storage: batch: %w", err))
	}
	return nil
}

// Commit commits the batch unsynced (the caller syncs with SyncWAL) and
// then publishes it: applied seqs (in memory; on disk the log records say
// them), truncation points, cache updates.
func (w *Writer) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.b.Empty() {
		return nil
	}
	if err := w.b.Commit(pebble.NoSync); err != nil {
		return w.spoil(fmt.Errorf("storage: commit: %w", err))
	}
	for p, seq := range w.applied {
		w.s.applied[p].Store(seq + 1)
	}
	for p, seq := range w.truncated {
		w.s.truncated[p].Store(seq + 1)
	}
	w.commitLean()
	for _, u := range w.ups {
		w.s.cache.update(u.p, u.ups)
	}
	w.err = errCommitted
	return nil
}

// errCommitted refuses writes to a writer after its Commit.
var errCommitted = fmt.Errorf("storage: writer already committed")

// Close releases the batch; what was not committed is dropped.
func (w *Writer) Close() { _ = w.b.Close() }

func (w *Writer) usable(p int) error {
	if w.err != nil {
		return w.err
	}
	return w.s.check(p)
}

func (w *Writer) spoil(err error) error {
	w.err = fmt.Errorf("storage: batch abandoned after a failed write: %w", err)
	return err
}
