package kvserver

import (
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// toPBOps converts storage ops for the wire.
func toPBOps(ops []storage.Op) []*kvpb.Op {
	out := make([]*kvpb.Op, len(ops))
	for i, o := range ops {
		k := kvpb.OpKind_OP_PUT
		if o.Kind == storage.OpDelete {
			k = kvpb.OpKind_OP_DELETE
		}
		out[i] = &kvpb.Op{Kind: k, Ns: o.NS, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out
}

// fromPBOps converts wire ops for storage.
func fromPBOps(ops []*kvpb.Op) []storage.Op {
	out := make([]storage.Op, len(ops))
	for i, o := range ops {
		k := storage.OpPut
		if o.Kind == kvpb.OpKind_OP_DELETE {
			k = storage.OpDelete
		}
		out[i] = storage.Op{Kind: k, NS: o.Ns, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out
}

// newEntry records an applied write for the in-flight list.
func newEntry(u *kvpb.Update, waiter bool) *entry {
	e := &entry{upd: u, at: time.Now()}
	if waiter {
		e.done = make(chan struct{})
	}
	return e
}

// wire returns the update to send under chain version v. Updates already
// queued may be in use by a sender, so a version change builds a new one.
func (e *entry) wire(v uint64) *kvpb.Update {
	if e.upd.ChainVersion == v {
		return e.upd
	}
	u := e.upd
	e.upd = &kvpb.Update{
		Partition: u.Partition, ChainVersion: v, Seq: u.Seq, Ops: u.Ops,
		ClientId: u.ClientId, ClientSeq: u.ClientSeq, Status: u.Status,
	}
	return e.upd
}

// dirtyKey is the CRAQ dirty-set key of an op.
func dirtyKey(ns, key []byte) string { return string(ns) + "\x00" + string(key) }

func (ps *partState) markDirty(ops []*kvpb.Op, delta int) {
	for _, o := range ops {
		k := dirtyKey(o.Ns, o.Key)
		if n := ps.dirty[k] + delta; n > 0 {
			ps.dirty[k] = n
		} else {
			delete(ps.dirty, k)
		}
	}
}

// appendLogLocked adds an applied entry to the in-flight list.
func (ps *partState) appendLogLocked(e *entry) {
	ps.log = append(ps.log, e)
	ps.markDirty(e.upd.Ops, +1)
}

// findLocked returns the in-flight entry with seq, or nil.
func (ps *partState) findLocked(seq uint64) *entry {
	if len(ps.log) == 0 || seq < ps.log[0].seq() {
		return nil
	}
	if i := int(seq - ps.log[0].seq()); i < len(ps.log) && ps.log[i].seq() == seq {
		return ps.log[i]
	}
	return nil
}

// commitLocked marks every seq <= upto committed: it drops those entries
// from the in-flight list and completes their waiters.
func (ps *partState) commitLocked(upto uint64) {
	upto = min(upto, ps.applied)
	if upto <= ps.committed {
		return
	}
	ps.committed = upto
	n := 0
	for n < len(ps.log) && ps.log[n].seq() <= upto {
		e := ps.log[n]
		ps.markDirty(e.upd.Ops, -1)
		e.finish(nil)
		ps.log[n] = nil
		n++
	}
	ps.log = ps.log[n:]
}

// failWaitersLocked fails every waiting head request (the chain changed
// under it; the client retries with the same request id at the new head).
func (ps *partState) failWaitersLocked(err error) {
	for _, e := range ps.log {
		e.finish(err)
	}
}

// unsentLocked returns entries up to seq not yet forwarded, marking them sent.
func (ps *partState) unsentLocked(upto uint64, now time.Time) []*kvpb.Update {
	var out []*kvpb.Update
	for _, e := range ps.log {
		if e.seq() > upto {
			break
		}
		if !e.sent {
			e.sent, e.sentAt = true, now
			out = append(out, e.wire(ps.version))
		}
	}
	return out
}

// resendLocked returns every in-flight entry after seq for retransmission.
// Only entries already forwarded once go: an unsent entry may not be synced
// here yet, and the writer that syncs it sends it. (At a head, an entry
// passed on before its sync could outlive a crash that loses it locally, and
// the restarted head would then reuse its seq for another write.)
func (ps *partState) resendLocked(after uint64, now time.Time) []*kvpb.Update {
	var out []*kvpb.Update
	for _, e := range ps.log {
		if e.seq() > after && e.sent {
			e.sent, e.sentAt = true, now
			out = append(out, e.wire(ps.version))
		}
	}
	return out
}
