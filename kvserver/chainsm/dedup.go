package chainsm

// dedupTable remembers recent client writes of a partition, so that a
// retried write is applied at most once (DESIGN §4 idempotence). Records
// are kept by time (the head's wall clock when it sequenced the write), at
// least the clients' retry window, and are persisted with the data, so a
// restart or a snapshot join does not forget them.
type dedupTable struct {
	// m maps an id to its record's position: recs[pos-base]. Its values
	// hold no pointers, so the collector does not scan it, and a committed
	// entry finds its record by the position it keeps (detach) instead of
	// a lookup: on a loaded server the lookups were a twentieth of its CPU.
	m    map[ReqID]uint64
	recs []dedupVal // by insertion, which is by WallMs within one head's life
	base uint64     // position of recs[0]
}

type dedupVal struct {
	rec DedupRecord
	le  *logEntry // while in the log; answers wait on it
}

func (d *dedupTable) get(id ReqID) (dedupVal, bool) {
	pos, ok := d.m[id]
	if !ok {
		return dedupVal{}, false
	}
	return d.recs[pos-d.base], true
}

func (d *dedupTable) add(rec DedupRecord, le *logEntry) {
	if rec.ID == (ReqID{}) {
		return // internal writes (TTL sweep) carry no id
	}
	if d.m == nil {
		d.m = map[ReqID]uint64{}
	}
	pos, ok := d.m[rec.ID]
	if ok {
		d.recs[pos-d.base] = dedupVal{rec: rec, le: le}
	} else {
		pos = d.base + uint64(len(d.recs))
		d.recs = append(d.recs, dedupVal{rec: rec, le: le})
		d.m[rec.ID] = pos
	}
	if le != nil {
		le.dedupPos = pos + 1
	}
	d.canaryEvict() // simcanary_dedupevict: the old count-capped table; no-op otherwise
}

// records returns every record, oldest first.
func (d *dedupTable) records() []DedupRecord {
	out := make([]DedupRecord, 0, len(d.recs))
	for _, v := range d.recs {
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
	for k < len(d.recs) {
		v := &d.recs[k]
		if v.rec.WallMs >= cutoffMs || v.le != nil {
			break
		}
		delete(d.m, v.rec.ID)
		gone = append(gone, v.rec.ID)
		k++
	}
	d.drop(k)
	return gone
}

// drop removes the oldest k records from recs (not from m).
func (d *dedupTable) drop(k int) {
	clear(d.recs[:k]) // the array outlives the reslice: let go of values
	d.recs = d.recs[k:]
	d.base += uint64(k)
}

// detach drops the log reference of a committed entry's record, keeping
// the status it ended with. The entry knows its record's position; a
// record since replaced, expired or reset (a snapshot) no longer points
// back at the entry and is left alone.
func (d *dedupTable) detach(le *logEntry) {
	if le.e.ID == (ReqID{}) || le.dedupPos == 0 {
		return
	}
	pos := le.dedupPos - 1
	if pos < d.base || pos-d.base >= uint64(len(d.recs)) {
		return
	}
	if v := &d.recs[pos-d.base]; v.le == le {
		v.rec.Status, v.rec.Res = le.e.Status, le.e.Res
		v.le = nil
	}
}

func (r *replica) forgetOld(cutoffMs int64) {
	if ids := r.dedup.expire(cutoffMs); len(ids) > 0 {
		r.n.store(StorageOp{Kind: StForget, Part: r.p, IDs: ids})
	}
}
