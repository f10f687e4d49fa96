package storage

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// OpKind is the kind of a write.
type OpKind uint8

const (
	// OpPut stores Value (with ExpiryMs) under Key.
	OpPut OpKind = iota + 1
	// OpDelete removes Key.
	OpDelete
	// OpNone writes nothing: a conditional write whose condition failed
	// (or an increment that failed), resolved at the head. It names the
	// key so members track it as in flight like any write.
	OpNone
	// OpIncr adds Delta to Key's base-10 integer value; only a head
	// resolves it (into an OpPut).
	OpIncr
	// OpExpire sets Key's expiry to ExpiryMs (0: none), keeping its value;
	// only a head resolves it (into an OpPut).
	OpExpire
)

// String returns the kind's name: "put", "delete", ...
func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpNone:
		return "none"
	case OpIncr:
		return "incr"
	case OpExpire:
		return "expire"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one write of a batch. ExpiryMs is absolute (unix ms, 0 = never); the
// head turns a TTL into it before replicating. Cond, Delta and ReturnPrev
// belong to a client's write at the head, which resolves them (Outcome):
// what is replicated and logged is a plain put, delete or OpNone.
type Op struct {
	Kind       OpKind
	NS, Key    []byte
	Value      []byte
	ExpiryMs   int64
	Cond       Cond
	Delta      int64 // OpIncr
	ReturnPrev bool  // OpPut: the answer carries the value replaced
}

// Entry is one stored record of a partition, as streamed in a snapshot.
type Entry struct {
	NS, Key []byte
	Record  Record
}

// validateOps checks kinds and namespaces before anything is read or
// written. Only a head (head true) takes ops it must resolve.
func validateOps(ops []Op, head bool) error {
	if head {
		if err := validateHeadOps(ops); err != nil {
			return err
		}
	}
	for i, op := range ops {
		switch {
		case op.Kind < OpPut || op.Kind > OpExpire:
			return fmt.Errorf("op %d: %w", i, ErrBadOp)
		case !head && HeadOp(op):
			return fmt.Errorf("op %d: a %v with a condition or a result reached a member unresolved: %w", i, op.Kind, ErrBadOp)
		}
		if err := ValidateNamespace(op.NS); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

// Apply writes ops for one partition with sequence number seq: the data and the
// partition's applied_seq (= seq) commit in one pebble batch. existed[i] tells
// whether a live record (not expired at nowMs) existed before ops[i], taking
// earlier ops of the same batch into account. seq must exceed the current
// applied_seq (else ErrStaleSeq and nothing is written). The caller serialises
// Apply per partition. The cache is updated only after the batch commits.
func (s *Store) Apply(partition int, seq uint64, ops []Op, nowMs int64) (existed []bool, err error) {
	return s.apply(partition, seq, ops, nowMs, s.wo)
}

// ApplyOpts is Apply with the sync choice made per call: a replica applies a
// whole replicated batch unsynced and then calls SyncWAL once.
func (s *Store) ApplyOpts(partition int, seq uint64, ops []Op, nowMs int64, sync bool) (existed []bool, err error) {
	wo := pebble.NoSync
	if sync && s.wo == pebble.Sync {
		wo = pebble.Sync
	}
	return s.apply(partition, seq, ops, nowMs, wo)
}

// SyncWAL makes every write committed before the call durable (pebble has
// one WAL, synced in order). Concurrent callers share fsyncs through
// pebble's commit pipeline. A store opened with Sync false does nothing.
func (s *Store) SyncWAL() error {
	if s.wo != pebble.Sync {
		return nil
	}
	defer s.timeSync(time.Now())
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("storage: sync wal: %w", err)
	}
	return nil
}

func (s *Store) timeSync(start time.Time) {
	if s.onSync != nil {
		s.onSync(time.Since(start))
	}
}

func (s *Store) apply(partition int, seq uint64, ops []Op, nowMs int64, wo *pebble.WriteOptions) (existed []bool, err error) {
	if err := s.check(partition); err != nil {
		return nil, err
	}
	if err := validateOps(ops, false); err != nil {
		return nil, err
	}
	applied, err := s.AppliedSeq(partition)
	if err != nil {
		return nil, err
	}
	if seq <= applied {
		return nil, fmt.Errorf("partition %d seq %d <= applied %d: %w", partition, seq, applied, ErrStaleSeq)
	}

	b := s.db.NewBatch()
	defer b.Close()
	if err := s.keepAllLean(b, partition); err != nil {
		return nil, err
	}
	existed, ups, err := s.writeOps(b, partition, seq, ops, nowMs, nil, true)
	if err != nil {
		return nil, err
	}
	if err := setUint64(b, stateKey(partition, stateApplied), seq); err != nil {
		return nil, err
	}
	if wo == pebble.Sync {
		defer s.timeSync(time.Now())
	}
	if err := b.Commit(wo); err != nil {
		return nil, fmt.Errorf("storage: commit partition %d seq %d: %w", partition, seq, err)
	}
	s.applied[partition].Store(seq + 1)
	s.lean[partition] = nil
	s.cache.update(partition, ups)
	return existed, nil
}

// writeOps adds ops, written at seq, to b. With exist, existed[i] tells
// whether a live record (not expired at nowMs) existed before ops[i]; only
// a head answering a write needs that, and a chain member would look every
// key up for nothing. ups are the cache updates to make once b commits
// (nil without a cache). pending holds the record left by keys written
// earlier in b (Seq 0: none live), and gets those of ops (nil: b holds no
// other data writes). OpNone writes nothing.
func (s *Store) writeOps(b *pebble.Batch, partition int, seq uint64, ops []Op, nowMs int64, pending map[string]Record, exist bool) (existed []bool, ups []cacheUpdate, err error) {
	existed = make([]bool, len(ops))
	if s.cache != nil {
		ups = make([]cacheUpdate, 0, len(ops))
	}
	if pending == nil && len(ops) > 1 {
		pending = make(map[string]Record, len(ops))
	}
	for i, op := range ops {
		k := appendKeyUnchecked(make([]byte, 0, 3+len(op.NS)+len(op.Key)), partition, op.NS, op.Key)
		if exist {
			if _, existed[i], err = s.recordBefore(k, pending, nowMs, false); err != nil {
				return nil, nil, err
			}
		}
		if op.Kind == OpNone {
			continue
		}
		up := cacheUpdate{key: k, delete: op.Kind == OpDelete}
		if up.delete {
			err = b.Delete(k, nil)
		} else {
			// The cache keeps op.Value itself: an op's value is never
			// changed once it is in an entry (the log, peers' messages
			// and watches share it too).
			up.rec = Record{Seq: seq, ExpiryMs: op.ExpiryMs, Value: op.Value}
			err = setRecord(b, k, up.rec)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("storage: batch: %w", err)
		}
		if pending != nil {
			after := up.rec
			if up.delete || after.Expired(nowMs) {
				after = Record{}
			}
			pending[string(k)] = after
		}
		if ups != nil {
			ups = append(ups, up)
		}
	}
	return existed, ups, nil
}

// setRecord adds key = EncodeRecord(r) to b, encoded straight into the
// batch (a value is most of a write's bytes).
func setRecord(b *pebble.Batch, key []byte, r Record) error {
	op := b.SetDeferred(len(key), recordHeaderLen+len(r.Value))
	copy(op.Key, key)
	AppendRecord(op.Value[:0], r)
	return op.Finish()
}

// setUint64 adds key = n (8 bytes BE) to b.
func setUint64(b *pebble.Batch, key []byte, n uint64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], n)
	if err := b.Set(key, v[:], nil); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	return nil
}

// recordBefore returns the record k holds and whether it is live at nowMs,
// looking at earlier ops of the batch, then the cache, then pebble. Only
// with value is the record's value read from pebble (a write's liveness
// needs none); it may alias the cache or the batch: copy it to keep it.
func (s *Store) recordBefore(k []byte, pending map[string]Record, nowMs int64, value bool) (Record, bool, error) {
	if r, ok := pending[lookupKey(k)]; ok {
		return r, r.Seq != 0, nil
	}
	if r, ok := s.cache.peek(k); ok {
		return r, !r.Expired(nowMs), nil
	}
	r, ok, err := s.readRecord(k, value && !CanaryCASNoValue)
	if err != nil {
		return Record{}, false, err
	}
	return r, ok && !r.Expired(nowMs), nil
}

// Ingest writes snapshot entries of a partition as they are (keeping each
// record's seq and expiry) and, when appliedSeq != 0, sets applied_seq to it, in
// one batch. A learner uses it to load the stream of ScanSnapshot. The
// partition's cache entries are dropped. Serialised with Apply per partition.
func (s *Store) Ingest(partition int, entries []Entry, appliedSeq uint64) error {
	if err := s.check(partition); err != nil {
		return err
	}
	for i, e := range entries {
		if err := ValidateNamespace(e.NS); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.keepAllLean(b, partition); err != nil {
		return err
	}
	var kbuf, vbuf []byte
	for _, e := range entries {
		kbuf = appendKeyUnchecked(kbuf[:0], partition, e.NS, e.Key)
		vbuf = AppendRecord(vbuf[:0], e.Record)
		if err := b.Set(kbuf, vbuf, nil); err != nil {
			return fmt.Errorf("storage: batch: %w", err)
		}
	}
	if appliedSeq != 0 {
		v := binary.BigEndian.AppendUint64(nil, appliedSeq)
		if err := b.Set(stateKey(partition, stateApplied), v, nil); err != nil {
			return fmt.Errorf("storage: batch: %w", err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("storage: ingest partition %d: %w", partition, err)
	}
	if appliedSeq != 0 {
		s.applied[partition].Store(appliedSeq + 1)
	}
	s.lean[partition] = nil
	s.cache.invalidate(partition)
	return nil
}

// DropPartition deletes every key of a partition and all its state:
// applied_seq, version, log, dedup and truncation records (two range
// deletions in one batch). It drops the partition's cache entries.
func (s *Store) DropPartition(partition int) error {
	if err := s.check(partition); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	dlo, dhi := partitionBounds(partition)
	slo, shi := stateBounds(partition)
	if err := b.DeleteRange(dlo, dhi, nil); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	if err := b.DeleteRange(slo, shi, nil); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	if err := b.Commit(s.wo); err != nil {
		return fmt.Errorf("storage: drop partition %d: %w", partition, err)
	}
	s.applied[partition].Store(1) // applied_seq 0
	s.truncated[partition].Store(1)
	s.lean[partition] = nil
	s.cache.invalidate(partition)
	s.lg.Info("partition dropped", zap.Int("partition", partition))
	return nil
}
