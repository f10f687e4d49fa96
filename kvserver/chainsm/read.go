package chainsm

import (
	"bytes"
	"slices"
	"strings"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// ReadReq is a client read.
type ReadReq struct {
	Token     uint64
	Ver       uint64 // chain version the client routed by; 0 = any
	NS, Key   []byte
	AnyMember bool // CRAQ: any clean member may serve, not only the tail
}

// Read decides whether this member may serve a read now (DESIGN §4): the
// tail, or with AnyMember any full member whose copy of the key has no
// write in flight; only under a read lease, outside the holdback, and
// never a promoted member before its sync. serve=true means: read storage
// now, before the next input, or, with prior, answer with that record
// (Seq 0: none): at the tail, the key's last committed record while a
// write to it is in flight, where the tail knows it. The read is
// linearized before that write, which no client has seen acknowledged,
// for it commits here first: it was sequenced after this member became
// the tail (priorFloor). A tail whose copy of the key is not yet
// committed and that does not know the record before answers later
// through Ready.Answers (SUCCESS: serve it then, before the next input).
func (n *Node) Read(now Mono, p int, rq ReadReq) (serve bool, prior *storage.Record, err error) {
	r := n.lookup(p)
	if err := n.readGate(now, r, rq.Ver, rq.AnyMember); err != nil {
		return false, nil, err
	}
	k := dirtyKey(rq.NS, rq.Key)
	if r.dirty[k] <= r.committed {
		return true, nil, nil
	}
	if r.succ != "" {
		return false, nil, ErrReadFromTail
	}
	if rec, ok := r.prior[k]; ok && (r.dirty[k] > r.priorFloor || canaryPriorFloor) && !canaryReadInFlight {
		n.stats.PriorReads++
		return true, &rec, nil
	}
	if canaryReadInFlight {
		return true, nil, nil
	}
	r.reads = append(r.reads, pendingRead{token: rq.Token, key: k})
	return false, nil, nil
}

// readGate says whether replica r may serve reads now: a full member
// routed at its chain version (ver 0: any), the tail unless anyMember,
// under its read lease, outside the holdback, and in sync.
func (n *Node) readGate(now Mono, r *replica, ver uint64, anyMember bool) error {
	switch {
	case n.stopped:
		return ErrStopped
	case r == nil || !r.member() || !anyMember && r.succ != "" || ver != 0 && ver != r.ver:
		return ErrNotResponsible
	case now < r.holdUntil || r.unsynced || !n.leaseValid(now, r):
		return ErrNotReady
	}
	return nil
}

// ScanReq is a page of a scan of one partition.
type ScanReq struct {
	Ver    uint64 // chain version the client routed by; 0 = any
	NS     []byte // the caller's namespace
	Prefix []byte // keys of NS that start with it
}

// Scan decides whether this member may serve a page of a scan of
// partition p now: only as the tail, with the checks of a tail read. Its
// storage may hold writes applied but not yet committed; inFlight lists
// the keys of rq's namespace and prefix that have one (sorted, without the
// namespace), which the shell must not take from storage as they are but
// read as single keys (Read), so the page shows only committed values. The
// rest of storage, read before the next input, is committed.
func (n *Node) Scan(now Mono, p int, rq ScanReq) (inFlight [][]byte, err error) {
	r := n.lookup(p)
	if err := n.readGate(now, r, rq.Ver, false); err != nil {
		return nil, err
	}
	pre := dirtyKey(rq.NS, rq.Prefix)
	skip := len(rq.NS) + 1
	for k, seq := range r.dirty {
		if seq > r.committed && strings.HasPrefix(k, pre) {
			inFlight = append(inFlight, []byte(k[skip:]))
		}
	}
	slices.SortFunc(inFlight, bytes.Compare)
	return inFlight, nil
}

// serveReads answers the tail's waiting reads whose key is now clean.
func (r *replica) serveReads() {
	if len(r.reads) == 0 {
		return
	}
	k := 0
	for _, rd := range r.reads {
		if r.dirty[rd.key] <= r.committed {
			r.n.answer(rd.token, kvpb.Status_SUCCESS, nil)
			continue
		}
		r.reads[k] = rd
		k++
	}
	r.reads = r.reads[:k]
}
