package chainsm

// dedupTable remembers recent client writes of a partition, so that a
// retried write is applied at most once (DESIGN §4 idempotence). Records
// are kept by time (the head's wall clock when it sequenced the write), at
// least the clients' retry window, and are persisted with the data, so a
// restart or a snapshot join does not forget them.
type dedupTable struct {
	m     map[ReqID]dedupVal
	order []ReqID // by insertion, which is by WallMs within one head's life
}

type dedupVal struct {
	rec DedupRecord
	le  *logEntry // while in the log; answers wait on it
}

func (d *dedupTable) get(id ReqID) (dedupVal, bool) {
	v, ok := d.m[id]
	return v, ok
}

func (d *dedupTable) add(rec DedupRecord, le *logEntry) {
	if rec.ID == (ReqID{}) {
		return // internal writes (TTL sweep) carry no id
	}
	if d.m == nil {
		d.m = map[ReqID]dedupVal{}
	}
	if _, ok := d.m[rec.ID]; !ok {
		d.order = append(d.order, rec.ID)
	}
	d.m[rec.ID] = dedupVal{rec: rec, le: le}
	d.canaryEvict() // simcanary_dedupevict: the old count-capped table; no-op otherwise
}

// records returns every record, oldest first.
func (d *dedupTable) records() []DedupRecord {
	out := make([]DedupRecord, 0, len(d.order))
	for _, id := range d.order {
		v := d.m[id]
		if v.le != nil && v.le.statusKnown {
			v.rec.Status, v.rec.Res = v.le.e.Status, v.le.e.Res
		}
		out = append(out, v.rec)
	}
	return out
}

// expire removes the records sequenced before cutoffMs that are not in the
// log any more, oldest first, and returns their ids.
func (d *dedupTable) expire(cutoffMs int64) []ReqID {
	var gone []ReqID
	k := 0
	for k < len(d.order) {
		v := d.m[d.order[k]]
		if v.rec.WallMs >= cutoffMs || v.le != nil {
			break
		}
		delete(d.m, d.order[k])
		gone = append(gone, d.order[k])
		k++
	}
	d.order = d.order[k:]
	return gone
}

// detach drops the log reference of a committed entry's record, keeping
// the status it ended with.
func (d *dedupTable) detach(le *logEntry) {
	if le.e.ID == (ReqID{}) {
		return
	}
	if v, ok := d.m[le.e.ID]; ok && v.le == le {
		v.rec.Status, v.rec.Res = le.e.Status, le.e.Res
		v.le = nil
		d.m[le.e.ID] = v
	}
}

func (r *replica) forgetOld(cutoffMs int64) {
	if ids := r.dedup.expire(cutoffMs); len(ids) > 0 {
		r.n.store(StorageOp{Kind: StForget, Part: r.p, IDs: ids})
	}
}
