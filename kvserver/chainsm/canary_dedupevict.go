//go:build simcanary_dedupevict

package chainsm

// simcanary_dedupevict puts back the old dedup table (issue 12, bug 5): kept
// by count (512 records per partition, first in first out), not by time, so
// a retry that comes after enough other writes is applied twice. The cap is
// 2 here, as buggify would set it, so the simulator's few hundred writes per
// partition reach it.

// canaryDedupCap caps the dedup table at this many records, evicting the
// oldest first even while still in the log.
const canaryDedupCap = 2

// canaryEvict drops the oldest records beyond canaryDedupCap.
func (d *dedupTable) canaryEvict() {
	for len(d.recs) > canaryDedupCap {
		delete(d.m, d.recs[0].rec.ID)
		d.drop(1)
	}
}
