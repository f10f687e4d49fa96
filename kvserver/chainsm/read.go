package chainsm

import "github.com/ecskv/ecskv/common/kvpb"

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
// now, before the next input. A tail whose copy of the key is not yet
// committed answers later through Ready.Answers (SUCCESS: serve it then,
// before the next input).
func (n *Node) Read(now Mono, p int, rq ReadReq) (serve bool, err error) {
	r := n.lookup(p)
	switch {
	case n.stopped:
		return false, ErrStopped
	case r == nil || !r.member() || !rq.AnyMember && r.succ != "" || rq.Ver != 0 && rq.Ver != r.ver:
		return false, ErrNotResponsible
	case now < r.holdUntil || r.unsynced || !n.leaseValid(now, r):
		return false, ErrNotReady
	}
	k := dirtyKey(rq.NS, rq.Key)
	if r.dirty[k] <= r.committed {
		return true, nil
	}
	if r.succ != "" {
		return false, ErrReadFromTail
	}
	r.reads = append(r.reads, pendingRead{token: rq.Token, key: k})
	return false, nil
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
