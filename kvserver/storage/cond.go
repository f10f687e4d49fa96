package storage

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/ecskv/ecskv/common/kvpb"
)

// CondKind is what a conditional write requires of its key's live value.
type CondKind uint8

const (
	// CondNone: unconditional.
	CondNone CondKind = iota
	// CondAbsent: no live value.
	CondAbsent
	// CondExists: a live value.
	CondExists
	// CondValue: a live value equal to Cond.Value.
	CondValue
	// CondVersion: the key's version is Cond.Version (0: no live value).
	CondVersion
)

// Cond is the condition of a put or delete, checked at the head.
type Cond struct {
	Kind    CondKind
	Value   []byte
	Version uint64
}

// holds reports whether c holds for the key's current record (live or
// not; a record that is not live has no value and version 0).
func (c Cond) holds(cur Record, live bool) bool {
	switch c.Kind {
	case CondAbsent:
		return !live
	case CondExists:
		return live
	case CondValue:
		return live && bytes.Equal(cur.Value, c.Value)
	case CondVersion:
		if !live {
			return c.Version == 0
		}
		return cur.Seq == c.Version
	}
	return true
}

// Result is the part of a client write's answer beyond its status that
// only the head can compute: the version on a failed condition, the value
// an increment made or a put replaced, and whether a live value existed.
// Members keep it with the request id, so a retry after a failover gets
// the same answer.
type Result struct {
	Version uint64 // CONDITION_FAILED: the key's current version (0: absent)
	Value   []byte // OpIncr: the new value; ReturnPrev: the value replaced
	Existed bool   // a live value existed before the write
}

// IsZero reports whether r carries nothing (a plain write's result).
func (r Result) IsZero() bool { return r.Version == 0 && r.Value == nil && !r.Existed }

// Outcome is what applying an entry at the head computed: the answer, and
// the ops as written, with conditions, increments and expiry changes
// resolved into plain puts and deletes (or OpNone) that every member
// applies as they are.
type Outcome struct {
	Status kvpb.Status
	Result Result
	Ops    []Op
	// Prior is the record the entry's key held before it (Seq 0: none),
	// when the apply asked (chainstore) and it was known without a read.
	Prior *Record
}

// HeadOp reports whether op must be resolved at the head before it can be
// replicated: it reads the key's current value.
func HeadOp(op Op) bool {
	return op.Cond.Kind != CondNone || op.ReturnPrev || op.Kind == OpIncr || op.Kind == OpExpire
}

// resolve turns a client write's only op into the op members apply, judged
// against the key's current record cur (live at the head's clock) and
// returns the answer. The resolved op never aliases cur's value: cur may
// be a cache entry or a batch's pending record.
func resolve(op Op, cur Record, live bool) (Op, kvpb.Status, Result) {
	res := Result{Existed: live}
	if op.ReturnPrev && live {
		res.Value = bytes.Clone(cur.Value)
	}
	none := Op{Kind: OpNone, NS: op.NS, Key: op.Key}
	if !op.Cond.holds(cur, live) {
		if live {
			res.Version = cur.Seq
		}
		return none, kvpb.Status_CONDITION_FAILED, res
	}
	switch op.Kind {
	case OpPut:
		out := op
		out.Cond, out.ReturnPrev = Cond{}, false
		if live {
			return out, kvpb.Status_UPDATE, res
		}
		return out, kvpb.Status_SUCCESS, res
	case OpDelete:
		out := Op{Kind: OpDelete, NS: op.NS, Key: op.Key}
		if live {
			return out, kvpb.Status_SUCCESS, res
		}
		return out, kvpb.Status_NOT_FOUND, res
	case OpIncr:
		return resolveIncr(op, cur, live, none)
	case OpExpire:
		if !live {
			return none, kvpb.Status_NOT_FOUND, res
		}
		return Op{Kind: OpPut, NS: op.NS, Key: op.Key, Value: bytes.Clone(cur.Value), ExpiryMs: op.ExpiryMs},
			kvpb.Status_UPDATE, res
	}
	return none, kvpb.Status_STATUS_UNSPECIFIED, res // validateOps refuses other kinds
}

// resolveIncr adds op.Delta to the key's base-10 value (absent: 0), as
// Redis' INCRBY does, keeping the key's expiry.
func resolveIncr(op Op, cur Record, live bool, none Op) (Op, kvpb.Status, Result) {
	res := Result{Existed: live}
	var n int64
	var expiry int64
	if live {
		// Only the canonical form, as Redis: no sign '+', no leading
		// zeros or spaces, no "-0".
		v, err := strconv.ParseInt(string(cur.Value), 10, 64)
		if err != nil || strconv.FormatInt(v, 10) != string(cur.Value) {
			return none, kvpb.Status_NOT_AN_INTEGER, res
		}
		n, expiry = v, cur.ExpiryMs
	}
	if op.Delta > 0 && n > math.MaxInt64-op.Delta || op.Delta < 0 && n < math.MinInt64-op.Delta {
		return none, kvpb.Status_OVERFLOW, res
	}
	res.Value = strconv.AppendInt(nil, n+op.Delta, 10)
	st := kvpb.Status_SUCCESS
	if live {
		st = kvpb.Status_UPDATE
	}
	return Op{Kind: OpPut, NS: op.NS, Key: op.Key, Value: res.Value, ExpiryMs: expiry}, st, res
}

// validateHeadOps checks a client write that needs resolving: such an op
// must be the write's only one (its answer is the write's answer).
func validateHeadOps(ops []Op) error {
	for i, op := range ops {
		if HeadOp(op) && len(ops) != 1 {
			return fmt.Errorf("op %d of %d: a conditional write, increment or expiry change must be alone: %w", i, len(ops), ErrBadOp)
		}
		if op.Cond.Kind > CondVersion {
			return fmt.Errorf("op %d: condition %d: %w", i, op.Cond.Kind, ErrBadOp)
		}
	}
	return nil
}
