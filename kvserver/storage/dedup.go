package storage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ecskv/ecskv/common/kvpb"
)

// DedupID identifies a client write: the client id and the client's counter.
// A zero Client marks an internal write (TTL sweep), which has no record.
type DedupID struct{ Client, Seq uint64 }

// DedupRecord is a remembered client write: the seq it was applied at and
// the answer it got, so a retry is answered instead of applied again.
// WallMs is the head's wall clock when it sequenced the write; the table is
// kept and expired by it.
type DedupRecord struct {
	ID     DedupID
	Seq    uint64
	Status kvpb.Status
	WallMs int64
	// Sum is OpsSum of the write's ops: a request id reused for another
	// operation is refused, not answered as a retry. 0: not known (a
	// record written before sums were kept).
	Sum uint64
	// Result is the rest of the answer (conditional writes, increments).
	Result Result
}

// OpsSum fingerprints a write's ops for its dedup record: kinds,
// namespaces, keys and values, conditions, deltas, not expiries (a retry of
// a put with a TTL gets a new expiry at the head). Never 0.
func OpsSum(ops []Op) uint64 {
	h := fnv.New64a()
	var n [9]byte
	for _, op := range ops {
		n[0] = byte(op.Kind)
		for _, b := range [][]byte{op.NS, op.Key, op.Value} {
			binary.BigEndian.PutUint64(n[1:], uint64(len(b)))
			_, _ = h.Write(n[:])
			_, _ = h.Write(b)
		}
		if HeadOp(op) { // plain ops keep the sums stored before conditions
			n[0] = byte(op.Cond.Kind)
			if op.ReturnPrev {
				n[0] |= 0x80
			}
			binary.BigEndian.PutUint64(n[1:], op.Cond.Version)
			_, _ = h.Write(n[:])
			binary.BigEndian.PutUint64(n[1:], uint64(op.Delta))
			_, _ = h.Write(n[1:])
			binary.BigEndian.PutUint64(n[1:], uint64(len(op.Cond.Value)))
			_, _ = h.Write(n[1:])
			_, _ = h.Write(op.Cond.Value)
		}
	}
	return max(h.Sum64(), 1)
}

// dedupValueLen is seq 8 | status 4 | wall ms 8 | sum 8; a record of
// dedupValueLenV1 (no sum) reads with Sum 0. A record with a Result adds
// version 8 | existed 1 | value (dedupValueLenV3 and more).
const (
	dedupValueLen   = 28
	dedupValueLenV1 = 20
	dedupValueLenV3 = dedupValueLen + 9
)

// dedupKeyLen is the state key, client id 8 and client seq 8.
const dedupKeyLen = stateKeyLen + 16

// writeDedup adds partition p's record r to b.
func writeDedup(b *pebble.Batch, p int, r DedupRecord) error {
	var buf [dedupValueLenV3]byte
	v := buf[:dedupValueLen]
	binary.BigEndian.PutUint64(v, r.Seq)
	binary.BigEndian.PutUint32(v[8:], uint32(r.Status))
	binary.BigEndian.PutUint64(v[12:], uint64(r.WallMs))
	binary.BigEndian.PutUint64(v[20:], r.Sum)
	if !r.Result.IsZero() {
		v = binary.BigEndian.AppendUint64(v, r.Result.Version)
		ex := byte(0)
		if r.Result.Existed {
			ex = 1
		}
		v = append(append(v, ex), r.Result.Value...)
	}
	if err := b.Set(dedupKey(p, r.ID), v, nil); err != nil {
		return fmt.Errorf("storage: batch: %w", err)
	}
	return nil
}

// decodeDedup parses a dedup record from its key and value.
func decodeDedup(k, v []byte) (DedupRecord, error) {
	if len(k) != dedupKeyLen || len(v) != dedupValueLen && len(v) != dedupValueLenV1 && len(v) < dedupValueLenV3 {
		return DedupRecord{}, fmt.Errorf("dedup record %x of %d bytes: %w", k, len(v), ErrCorruptRecord)
	}
	r := DedupRecord{
		ID: DedupID{
			Client: binary.BigEndian.Uint64(k[stateKeyLen:]),
			Seq:    binary.BigEndian.Uint64(k[stateKeyLen+8:]),
		},
		Seq:    binary.BigEndian.Uint64(v),
		Status: kvpb.Status(int32(binary.BigEndian.Uint32(v[8:]))),
		WallMs: int64(binary.BigEndian.Uint64(v[12:])),
	}
	if len(v) >= dedupValueLen {
		r.Sum = binary.BigEndian.Uint64(v[20:])
	}
	if len(v) >= dedupValueLenV3 {
		r.Result = Result{Version: binary.BigEndian.Uint64(v[dedupValueLen:]), Existed: v[dedupValueLen+8] == 1}
		if len(v) > dedupValueLenV3 {
			r.Result.Value = bytes.Clone(v[dedupValueLenV3:])
		}
	}
	return r, nil
}

// ForgetDedup deletes partition p's dedup records of ids (absent ones are
// ignored) in one unsynced batch: the table expires by time, and forgetting
// a record late is harmless.
func (s *Store) ForgetDedup(p int, ids []DedupID) error {
	w := s.NewWriter()
	defer w.Close()
	if err := w.ForgetDedup(p, ids); err != nil {
		return err
	}
	return w.Commit()
}

// DedupRecords returns partition p's dedup records, oldest first (by WallMs,
// then client id and client seq): the table a tail sends with a snapshot.
func (s *Store) DedupRecords(p int) ([]DedupRecord, error) {
	if err := s.check(p); err != nil {
		return nil, err
	}
	return readDedup(s.db, p)
}

// readDedup reads partition p's dedup records from r, oldest first.
func readDedup(r pebble.Reader, p int) ([]DedupRecord, error) {
	var recs []DedupRecord
	lo, hi := kindBounds(p, stateDedup)
	err := iterRange(r, p, lo, hi, func(k, v []byte) error {
		d, err := decodeDedup(k, v)
		if err != nil {
			return fmt.Errorf("storage: partition %d: %w", p, err)
		}
		recs = append(recs, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b DedupRecord) int {
		return cmp.Or(cmp.Compare(a.WallMs, b.WallMs), cmp.Compare(a.ID.Client, b.ID.Client), cmp.Compare(a.ID.Seq, b.ID.Seq))
	})
	return recs, nil
}

// Dedup returns partition p's dedup record of id, if it has one.
func (s *Store) Dedup(p int, id DedupID) (DedupRecord, bool, error) {
	if err := s.check(p); err != nil {
		return DedupRecord{}, false, err
	}
	k := dedupKey(p, id)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return DedupRecord{}, false, nil
	}
	if err != nil {
		return DedupRecord{}, false, fmt.Errorf("storage: dedup record of partition %d: %w", p, err)
	}
	defer closer.Close()
	d, err := decodeDedup(k, v)
	return d, err == nil, err
}
