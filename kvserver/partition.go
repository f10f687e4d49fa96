package kvserver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
)

// partState is this server's replica state for one partition. All fields
// are guarded by mu.
//
// Invariants (DESIGN §4), whenever mu is free:
//   - committed <= applied, and storage's applied_seq == applied once loaded;
//   - log holds exactly the entries committed < seq <= applied that this
//     member applied, in seq order (the in-flight list);
//   - a tail has committed == applied and an empty log;
//   - every entry in log was or will be forwarded to succ under version.
type partState struct {
	mu        sync.Mutex
	loaded    bool   // applied was read from storage
	applied   uint64 // seq of the last write applied here
	committed uint64 // every seq <= committed is applied by the tail
	version   uint64 // chain version this member follows
	since     uint64 // ring epoch in which this server adopted version
	members   []string
	pred      string         // predecessor in the chain; "" at the head
	succ      string         // successor; "" at the tail
	learner   string         // when tail: a learner to forward updates to
	feeding   bool           // the learner took its snapshot: forward it updates
	learnFrom uint64         // ... after this seq
	recent    []*kvpb.Update // updates forwarded to the learner, for resends
	recentAt  time.Time      // last resend of recent to a promoted learner
	log       []*entry
	dirty     map[string]int // key -> in-flight entries touching it (CRAQ)
	dedup     dedupTable
	// syncing marks a learner just promoted to tail: until it has applied
	// syncTo (what its predecessor, the old tail, had applied when it
	// answered our nack) it may lack writes the old tail committed, so it
	// serves no reads; then it reports synced/<id>/<p> (reportSynced).
	syncing    bool
	synced     uint64 // generation of the latest synced report; a newer one supersedes it
	syncTo     uint64
	nackedAt   time.Time
	holdUntil  time.Time // no commit or read before this (read-lease holdback)
	ackPending bool      // an ack is scheduled for the end of the holdback
	catchup    *catchup  // learner catching up; nil otherwise
}

// entry is one in-flight write.
type entry struct {
	upd    *kvpb.Update
	at     time.Time     // applied here: the age of the oldest entry is the chain's lag
	sent   bool          // forwarded to succ at least once
	sentAt time.Time     // last (re)send, for retransmission
	done   chan struct{} // head only: closed when committed or failed
	err    error         // set before done closes when the write failed
}

func (e *entry) seq() uint64 { return e.upd.Seq }

// finish completes a head entry's waiter once.
func (e *entry) finish(err error) {
	if e.done == nil {
		return
	}
	select {
	case <-e.done:
	default:
		e.err = err
		close(e.done)
	}
}

// partitions holds one partState per partition. P is fixed for the life of
// a cluster, so the table is built once from the first ring.
type partitions struct {
	table atomic.Pointer[[]*partState]
}

func (ps *partitions) resize(p int) {
	if t := ps.table.Load(); t != nil && len(*t) == p {
		return
	}
	t := make([]*partState, p)
	for i := range t {
		t[i] = &partState{dirty: map[string]int{}}
	}
	ps.table.Store(&t)
}

func (ps *partitions) get(p int) *partState {
	return (*ps.table.Load())[p]
}

// lookup returns partition p's state, or false for a partition outside the
// ring (or before the first ring): replication input is not trusted.
func (ps *partitions) lookup(p int) (*partState, bool) {
	t := ps.table.Load()
	if t == nil || p < 0 || p >= len(*t) {
		return nil, false
	}
	return (*t)[p], true
}

func (ps *partitions) count() int {
	if t := ps.table.Load(); t != nil {
		return len(*t)
	}
	return 0
}

// dedupKey identifies a client write.
type dedupKey struct{ client, seq uint64 }

type dedupVal struct {
	seq    uint64 // partition seq the write got
	status kvpb.Status
}

// dedupTable remembers the last dedupCap writes of a partition so a retried
// write is applied at most once (DESIGN §4 idempotence). FIFO eviction.
type dedupTable struct {
	m     map[dedupKey]dedupVal
	order []dedupKey
}

const dedupCap = 512

func (d *dedupTable) get(k dedupKey) (dedupVal, bool) {
	v, ok := d.m[k]
	return v, ok
}

func (d *dedupTable) add(k dedupKey, v dedupVal) {
	if k.client == 0 {
		return // internal writes (TTL sweep) carry no id
	}
	if d.m == nil {
		d.m = make(map[dedupKey]dedupVal, dedupCap)
	}
	if _, ok := d.m[k]; !ok {
		d.order = append(d.order, k)
	}
	d.m[k] = v
	if len(d.order) > dedupCap {
		delete(d.m, d.order[0])
		d.order = d.order[1:]
	}
}

func (d *dedupTable) reset() { *d = dedupTable{} }
