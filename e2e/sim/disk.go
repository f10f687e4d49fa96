package sim

import (
	"maps"
	"slices"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// disk models one server's storage with the semantics of the kvserver's
// pebble store: every storage operation is one batch, applied at once to
// what readers see and, at the next sync, made durable. A power loss keeps
// the durable state plus a seeded prefix of the batches since the last
// sync (a torn WAL tail keeps whole batches, in order).
type disk struct {
	cur, durable diskState
	pending      []chainsm.StorageOp
	base         int // absolute index of pending[0]
}

type record struct {
	seq      uint64
	expiryMs int64
	value    string
}

type partStore struct {
	data      map[string]record
	applied   uint64
	ver       uint64
	epoch     uint64
	unsynced  bool
	truncated uint64
	log       map[uint64]*chainsm.Entry
	dedup     map[chainsm.ReqID]chainsm.DedupRecord
}

type diskState map[int]*partStore

func newDisk() *disk { return &disk{cur: diskState{}, durable: diskState{}} }

func (st diskState) part(p int) *partStore {
	ps, ok := st[p]
	if !ok {
		ps = &partStore{data: map[string]record{}, log: map[uint64]*chainsm.Entry{}, dedup: map[chainsm.ReqID]chainsm.DedupRecord{}}
		st[p] = ps
	}
	return ps
}

func (ps *partStore) clone() *partStore {
	c := *ps
	c.data, c.log, c.dedup = maps.Clone(ps.data), maps.Clone(ps.log), maps.Clone(ps.dedup)
	return &c
}

// apply runs op on what readers see and queues it for the next sync. It
// returns the status a head apply computed.
func (d *disk) apply(op chainsm.StorageOp, wallMs int64) kvpb.Status {
	d.pending = append(d.pending, op)
	return d.cur.apply(op, wallMs)
}

// mark returns the position a sync requested now covers.
func (d *disk) mark() int { return d.base + len(d.pending) }

// syncTo makes the batches before position upto durable.
func (d *disk) syncTo(upto int) {
	n := min(max(upto-d.base, 0), len(d.pending))
	for _, op := range d.pending[:n] {
		d.durable.apply(op, 0)
	}
	d.pending = d.pending[n:]
	d.base += n
}

// crash returns the disk as a power loss leaves it: durable state plus the
// first keep pending batches.
func (d *disk) crash(keep int) *disk {
	nd := &disk{durable: diskState{}}
	for p, ps := range d.durable {
		nd.durable[p] = ps.clone()
	}
	for _, op := range d.pending[:keep] {
		nd.durable.apply(op, 0)
	}
	nd.cur = diskState{}
	for p, ps := range nd.durable {
		nd.cur[p] = ps.clone()
	}
	return nd
}

func (st diskState) apply(op chainsm.StorageOp, wallMs int64) kvpb.Status {
	switch op.Kind {
	case chainsm.StDrop:
		delete(st, op.Part)
		return 0
	case chainsm.StIngest:
		ps := st.part(op.Part)
		*ps = partStore{data: maps.Clone(op.Snap.(map[string]record)), applied: op.Seq, truncated: op.Seq,
			log: map[uint64]*chainsm.Entry{}, dedup: map[chainsm.ReqID]chainsm.DedupRecord{}}
		for _, r := range op.Dedup {
			ps.dedup[r.ID] = r
		}
		return 0
	}
	ps := st.part(op.Part)
	switch op.Kind {
	case chainsm.StApply:
		return ps.applyEntry(op.Entry, op.NeedStatus, wallMs)
	case chainsm.StTruncate:
		for s := range ps.log {
			if s <= op.Seq {
				delete(ps.log, s)
			}
		}
		ps.truncated = max(ps.truncated, op.Seq)
	case chainsm.StForget:
		for _, id := range op.IDs {
			delete(ps.dedup, id)
		}
	case chainsm.StVersion:
		ps.ver, ps.epoch, ps.unsynced = op.Ver, op.Epoch, op.Unsynced
	}
	return 0
}

func (ps *partStore) applyEntry(e *chainsm.Entry, head bool, wallMs int64) kvpb.Status {
	st := e.Status
	for i, o := range e.Ops {
		k := string(o.NS) + "\x00" + string(o.Key)
		old, ok := ps.data[k]
		live := ok && (old.expiryMs == 0 || wallMs < old.expiryMs)
		if o.Kind == storage.OpDelete {
			delete(ps.data, k)
		} else {
			ps.data[k] = record{seq: e.Seq, expiryMs: o.ExpiryMs, value: string(o.Value)}
		}
		if head && i == 0 {
			st = writeStatus(o.Kind, live)
		}
	}
	ps.applied = e.Seq
	le := *e
	le.Status = st
	ps.log[e.Seq] = &le
	if e.ID != (chainsm.ReqID{}) {
		ps.dedup[e.ID] = chainsm.DedupRecord{ID: e.ID, Seq: e.Seq, Status: st, WallMs: e.WallMs}
	}
	return st
}

func writeStatus(k storage.OpKind, existed bool) kvpb.Status {
	switch {
	case k == storage.OpDelete && !existed:
		return kvpb.Status_NOT_FOUND
	case k == storage.OpPut && existed:
		return kvpb.Status_UPDATE
	}
	return kvpb.Status_SUCCESS
}

// recovered lists what the durable state holds, per partition, in order.
func (d *disk) recovered() map[int]chainsm.Recovered {
	out := map[int]chainsm.Recovered{}
	for _, p := range slices.Sorted(maps.Keys(d.cur)) {
		ps := d.cur[p]
		rec := chainsm.Recovered{Applied: ps.applied, Ver: ps.ver, Epoch: ps.epoch, Unsynced: ps.unsynced, Truncated: ps.truncated}
		for s := ps.truncated + 1; s <= ps.applied; s++ {
			rec.Log = append(rec.Log, ps.log[s])
		}
		for _, id := range slices.SortedFunc(maps.Keys(ps.dedup), cmpReqID) {
			rec.Dedup = append(rec.Dedup, ps.dedup[id])
		}
		slices.SortStableFunc(rec.Dedup, func(a, b chainsm.DedupRecord) int { return cmpInt(a.WallMs, b.WallMs) })
		out[p] = rec
	}
	return out
}

func cmpReqID(a, b chainsm.ReqID) int {
	if a.Client != b.Client {
		return cmpInt(a.Client, b.Client)
	}
	return cmpInt(a.Seq, b.Seq)
}

func cmpInt[T int64 | uint64 | int](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// get returns a key's record as storage holds it, expired or not (the
// shell decides how an expiring record reads).
func (d *disk) get(p int, key string) (record, bool) {
	ps, ok := d.cur[p]
	if !ok {
		return record{}, false
	}
	r, ok := ps.data["\x00"+key]
	return r, ok
}

// snapshot copies partition p's records for a learner.
func (d *disk) snapshot(p int) map[string]record {
	if ps, ok := d.cur[p]; ok {
		return maps.Clone(ps.data)
	}
	return map[string]record{}
}
