package chainsm

// Read leases (DESIGN §4). A member serves reads only under a lease from a chain neighbour (its predecessor; the head from
// its successor). A grantor grants only for the epoch it has adopted and
// only while its etcd contact is fresh (within L/2), so once a new epoch is
// in etcd no lease of an older one outlives it by more than 1.5 L, which is
// the holdback of a member that adopts a chain from which someone was
// removed. A sole member has no neighbour: it serves while its own etcd
// contact is fresh.

type leaseTable struct {
	grants  map[string]grant // by grantor
	pending map[uint64]leaseAsk
	token   uint64
	lastAsk Mono
}

type grant struct {
	epoch uint64
	until Mono
}

type leaseAsk struct {
	grantor string
	epoch   uint64
	sentAt  Mono
}

func newLeaseTable() leaseTable {
	return leaseTable{grants: map[string]grant{}, pending: map[uint64]leaseAsk{}}
}

// grantorIn returns id's lease grantor in a chain: its predecessor, the
// successor for the head, "" for a chain of one.
func grantorIn(members []string, idx int) string {
	switch {
	case idx > 0:
		return members[idx-1]
	case len(members) > 1:
		return members[1]
	}
	return ""
}

// leaseValid reports whether r may serve reads (and, as tail, ack) now.
func (n *Node) leaseValid(now Mono, r *replica) bool {
	g := grantorIn(r.members, r.idx)
	if g == "" {
		return canaryTwoHeads || n.etcdFresh(now) // simcanary_twoheads: a sole member serves unfenced
	}
	gr, ok := n.leases.grants[g]
	return ok && gr.epoch >= r.since && now < gr.until
}

// renewLeases asks every grantor this node needs, every L/3.
func (n *Node) renewLeases(now Mono) {
	lt := &n.leases
	if n.epoch == 0 || now-lt.lastAsk < n.cfg.Lease/3 && lt.lastAsk != 0 {
		return
	}
	lt.lastAsk = now
	need := map[string]bool{}
	for _, r := range n.parts {
		if r != nil && r.member() {
			if g := grantorIn(r.members, r.idx); g != "" {
				need[g] = true
			}
		}
	}
	for tok, a := range lt.pending {
		if now-a.sentAt > n.cfg.Lease {
			delete(lt.pending, tok) // its answer could not be used any more
		}
	}
	for _, g := range sortedKeys(need) {
		lt.token++
		lt.pending[lt.token] = leaseAsk{grantor: g, epoch: n.epoch, sentAt: now}
		n.send(Msg{Kind: MsgLeaseReq, To: g, Epoch: n.epoch, ReqToken: lt.token})
	}
}

// grantLease answers a neighbour's request.
func (n *Node) grantLease(now Mono, m Msg) {
	epoch := canaryGrantEpoch(n.epoch, m.Epoch) // simcanary_leaseorder: a stale epoch; n.epoch otherwise
	ok := epoch != 0 && m.Epoch == epoch && n.etcdFresh(now)
	n.send(Msg{Kind: MsgLeaseResp, To: m.From, Epoch: epoch, Granted: ok, LeaseNs: int64(n.cfg.Lease), ReqToken: m.ReqToken})
}

// leaseGranted records a grant, counted from when it was asked for and
// shortened by the drift bound.
func (n *Node) leaseGranted(m Msg) {
	lt := &n.leases
	a, ok := lt.pending[m.ReqToken]
	if !ok || a.grantor != m.From {
		return
	}
	delete(lt.pending, m.ReqToken)
	if !m.Granted || m.Epoch != a.epoch {
		return
	}
	until := a.sentAt + Mono(float64(m.LeaseNs)*(1-n.cfg.Drift))
	if g := lt.grants[m.From]; a.epoch > g.epoch || a.epoch == g.epoch && until > g.until {
		lt.grants[m.From] = grant{epoch: a.epoch, until: until}
	}
}
