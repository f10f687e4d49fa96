package etcdmodel

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"
)

// CmpTarget is the field of a key a Cmp reads.
type CmpTarget int

// The targets of etcd's Compare.
const (
	TargetValue CmpTarget = iota + 1
	TargetVersion
	TargetCreateRev
	TargetModRev
	TargetLease
)

// CmpOp is the relation a Cmp checks between the key's field and its operand.
type CmpOp int

// The relations of etcd's Compare.
const (
	Equal CmpOp = iota + 1
	NotEqual
	Less
	Greater
)

// Cmp is one guard of a Txn: Key's Target field Op the operand.
type Cmp struct {
	Key    string
	Target CmpTarget
	Op     CmpOp
	Value  []byte // operand of TargetValue
	Int    int64  // operand of the other targets
}

// CmpValue compares the key's value (false on a missing key, as etcd).
func CmpValue(key string, op CmpOp, v []byte) Cmp {
	return Cmp{Key: key, Target: TargetValue, Op: op, Value: v}
}

// CmpVersion compares the key's version (0 when missing).
func CmpVersion(key string, op CmpOp, v int64) Cmp {
	return Cmp{Key: key, Target: TargetVersion, Op: op, Int: v}
}

// CmpCreateRev compares the key's create revision (0 when missing). An
// elected leader guards its writes with CmpCreateRev(key, Equal, createRev).
func CmpCreateRev(key string, op CmpOp, rev int64) Cmp {
	return Cmp{Key: key, Target: TargetCreateRev, Op: op, Int: rev}
}

// CmpModRev compares the key's mod revision (0 when missing).
func CmpModRev(key string, op CmpOp, rev int64) Cmp {
	return Cmp{Key: key, Target: TargetModRev, Op: op, Int: rev}
}

// CmpLease compares the key's lease (0 when missing or unleased).
func CmpLease(key string, op CmpOp, id LeaseID) Cmp {
	return Cmp{Key: key, Target: TargetLease, Op: op, Int: int64(id)}
}

// OpType is the kind of an Op.
type OpType int

// The request kinds a txn branch may hold.
const (
	OpTypePut OpType = iota + 1
	OpTypeDelete
	OpTypeGet
)

// Op is one request of a txn branch; build it with OpPut, OpDelete,
// OpDeletePrefix, OpGet or OpGetPrefix.
type Op struct {
	Type   OpType
	Key    string
	Prefix bool // Delete and Get: Key is a prefix ("" = every key)
	Value  []byte
	Lease  LeaseID
}

// OpPut writes key under lease (0 = none), replacing its previous lease.
func OpPut(key string, value []byte, lease LeaseID) Op {
	return Op{Type: OpTypePut, Key: key, Value: value, Lease: lease}
}

// OpDelete deletes key if it exists.
func OpDelete(key string) Op { return Op{Type: OpTypeDelete, Key: key} }

// OpDeletePrefix deletes every key starting with prefix.
func OpDeletePrefix(prefix string) Op { return Op{Type: OpTypeDelete, Key: prefix, Prefix: true} }

// OpGet reads key.
func OpGet(key string) Op { return Op{Type: OpTypeGet, Key: key} }

// OpGetPrefix reads every key starting with prefix, sorted by key.
func OpGetPrefix(prefix string) Op { return Op{Type: OpTypeGet, Key: prefix, Prefix: true} }

// Response is the answer to one Op of the branch taken.
type Response struct {
	KVs     []KV  // Get: the keys read, sorted by key
	Deleted int64 // Delete: how many keys it deleted
}

// TxnResult is the answer to a Txn.
type TxnResult struct {
	// Succeeded tells whether every Cmp held, so that then ran, not els.
	Succeeded bool
	// Rev is the header revision after the txn.
	Rev int64
	// Responses holds one entry per Op of the branch taken, in order.
	Responses []Response
}

// Txn atomically evaluates cmps and runs then if all hold, els otherwise.
// Ops see the writes of earlier ops of the same branch. On error nothing
// changes.
func (s *Store) Txn(now Time, cmps []Cmp, then, els []Op) (TxnResult, error) {
	s.tick(now)
	if err := validate(cmps, then, els); err != nil {
		return TxnResult{Rev: s.rev}, err
	}
	ok := true
	for _, c := range cmps {
		if !s.compare(c) {
			ok = false
			break
		}
	}
	ops := then
	if !ok {
		ops = els
	}
	for _, op := range ops {
		if op.Type == OpTypePut && op.Lease != 0 && s.lease(op.Lease) == nil {
			return TxnResult{Rev: s.rev}, fmt.Errorf("put %q under lease %d: %w", op.Key, op.Lease, ErrLeaseNotFound)
		}
	}
	rev := s.rev + 1
	var evs []Event
	resps := make([]Response, len(ops))
	for i, op := range ops {
		var ev []Event
		resps[i], ev = s.apply(rev, op)
		evs = append(evs, ev...)
	}
	s.commit(rev, evs)
	return TxnResult{Succeeded: ok, Rev: s.rev, Responses: resps}, nil
}

// Put writes one key and returns the revision after it.
func (s *Store) Put(now Time, key string, value []byte, lease LeaseID) (int64, error) {
	r, err := s.Txn(now, nil, []Op{OpPut(key, value, lease)}, nil)
	return r.Rev, err
}

// Delete deletes one key and returns the revision after it (unchanged when
// the key did not exist).
func (s *Store) Delete(now Time, key string) (int64, error) {
	r, err := s.Txn(now, nil, []Op{OpDelete(key)}, nil)
	return r.Rev, err
}

func (s *Store) apply(rev int64, op Op) (Response, []Event) {
	i, found := s.find(op.Key)
	j := i
	switch {
	case op.Prefix:
		_, j = s.prefixBounds(op.Key)
	case found:
		j = i + 1
	}
	switch op.Type {
	case OpTypePut:
		return Response{}, []Event{s.put(rev, op.Key, op.Value, op.Lease)}
	case OpTypeDelete:
		evs := s.deleteRange(rev, i, j)
		return Response{Deleted: int64(len(evs))}, evs
	default:
		kvs := make([]KV, 0, j-i)
		for _, kv := range s.kvs[i:j] {
			kvs = append(kvs, kv.clone())
		}
		return Response{KVs: kvs}, nil
	}
}

func (s *Store) compare(c Cmp) bool {
	var kv KV
	if i, ok := s.find(c.Key); ok {
		kv = s.kvs[i]
	} else if c.Target == TargetValue {
		return false
	}
	var r int
	switch c.Target {
	case TargetValue:
		r = bytes.Compare(kv.Value, c.Value)
	case TargetVersion:
		r = cmp.Compare(kv.Version, c.Int)
	case TargetCreateRev:
		r = cmp.Compare(kv.CreateRev, c.Int)
	case TargetModRev:
		r = cmp.Compare(kv.ModRev, c.Int)
	case TargetLease:
		r = cmp.Compare(int64(kv.Lease), c.Int)
	}
	switch c.Op {
	case Equal:
		return r == 0
	case NotEqual:
		return r != 0
	case Less:
		return r < 0
	default:
		return r > 0
	}
}

// validate rejects what etcd's gRPC layer rejects before the txn is
// evaluated, in both branches.
func validate(cmps []Cmp, then, els []Op) error {
	for _, c := range cmps {
		if c.Key == "" {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]Op{then, els} {
		for i, op := range ops {
			if op.Key == "" && !op.Prefix {
				return ErrEmptyKey
			}
			if op.Type != OpTypePut {
				continue
			}
			for _, o := range ops[:i] {
				if overlaps(o, op.Key) {
					return fmt.Errorf("key %q: %w", op.Key, ErrDuplicateKey)
				}
			}
			for _, o := range ops[i+1:] {
				if o.Type == OpTypeDelete && overlaps(o, op.Key) {
					return fmt.Errorf("key %q: %w", op.Key, ErrDuplicateKey)
				}
			}
		}
	}
	return nil
}

// overlaps tells whether the write o touches key.
func overlaps(o Op, key string) bool {
	switch {
	case o.Type == OpTypeGet:
		return false
	case o.Prefix:
		return strings.HasPrefix(key, o.Key)
	default:
		return o.Key == key
	}
}
