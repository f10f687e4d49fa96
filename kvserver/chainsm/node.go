package chainsm

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// DefaultDedupRetentionMs is how long a node remembers a request id
// unless configured otherwise: 30 s. Clients retry a write for half of it
// at most (kvclient.WriteRetryWindow). The records live in the LSM tree
// until then, and compactions rewrite them: kept two minutes, they took
// sustained writes to 0.6x (README, Performance).
const DefaultDedupRetentionMs = 30_000

// Config configures a Node. Durations are in nanoseconds of Mono time.
type Config struct {
	// ID is this server's id in the ring.
	ID string
	// Lease is the read lease length L (DESIGN §4); default 400 ms.
	Lease Mono
	// Drift is ε, the bound on relative clock drift; default 0.1.
	Drift float64
	// TickInterval is how often the node wants a Tick; default 25 ms.
	TickInterval Mono
	// Retransmit is how long a forwarded entry waits for its ack before it
	// is sent again, and how often a hello or snapshot request is repeated;
	// default 1 s (retransmits) and 200 ms (hellos).
	Retransmit Mono
	// DedupRetentionMs is how long a request id is remembered, by the
	// head's wall clock; it must exceed the clients' retry window. Default
	// DefaultDedupRetentionMs.
	DedupRetentionMs int64
	// MaxLearnerBuffer bounds the entries a learner holds while its
	// snapshot is on the way; default 65536.
	MaxLearnerBuffer int
	// Check runs the invariant checks after every input (tests, simulator).
	Check bool
}

func (c *Config) defaults() {
	if c.Lease == 0 {
		c.Lease = Mono(400 * time.Millisecond)
	}
	if c.Drift == 0 {
		c.Drift = 0.1
	}
	if c.TickInterval == 0 {
		c.TickInterval = Mono(25 * time.Millisecond)
	}
	if c.Retransmit == 0 {
		c.Retransmit = Mono(time.Second)
	}
	if c.DedupRetentionMs == 0 {
		c.DedupRetentionMs = DefaultDedupRetentionMs
	}
	if c.MaxLearnerBuffer == 0 {
		c.MaxLearnerBuffer = 1 << 16
	}
}

// Holdback is how long a member that adopts a chain from which a member was
// removed holds back commits and reads: no read lease of the old chain
// outlives the new epoch by more than 1.5 L (DESIGN §4).
func (c *Config) Holdback() Mono {
	return Mono(1.5 * float64(c.Lease) * (1 + c.Drift))
}

func (c *Config) helloRetry() Mono { return min(c.Retransmit, Mono(200*time.Millisecond)) }

// Node is one server's chain protocol over all its partitions.
type Node struct {
	cfg   Config
	parts []*replica // by partition; nil until seen
	// synced is SyncDone's scratch: the partitions whose synced point rose.
	synced []*replica
	epoch  uint64 // epoch of the ring adopted last
	ring   *ringmeta.Ring

	leases leaseTable
	// etcdContact is the start of the last linearizable etcd read that
	// succeeded (its ring applied): a member grants leases, and a sole
	// member serves, only while it is fresh.
	etcdContact Mono
	etcdOK      bool

	rd        Ready
	prevRd    Ready        // the last Ready returned: its arrays are reused for the one after
	needSt    []outcomeFor // applies in rd.Storage whose outcome Advance brings
	toSync    []partSeq    // applied since the last sync request
	syncGen   uint64
	syncQ     []syncBatch // requested syncs, in order
	lastTick  Mono
	lastGC    int64
	stopped   bool
	violation error // first invariant violation (Check)
	stats     Stats
}

type partSeq struct {
	p   int
	gen uint64
	seq uint64
}

type syncBatch struct {
	id  uint64
	ups []partSeq
}

// New returns a node with no partitions; Recover them, then SetRing.
func New(cfg Config) *Node {
	cfg.defaults()
	return &Node{cfg: cfg, leases: newLeaseTable()}
}

// Config returns the node's configuration with defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Epoch returns the epoch of the ring adopted last (0: none yet).
func (n *Node) Epoch() uint64 { return n.epoch }

func (n *Node) part(p int) *replica {
	if p < 0 || p >= storageMaxPartitions {
		return nil
	}
	for len(n.parts) <= p {
		n.parts = append(n.parts, nil)
	}
	if n.parts[p] == nil {
		n.parts[p] = newReplica(n, p)
	}
	return n.parts[p]
}

// lookup returns partition p's replica if it exists; peer input is not
// trusted to create state.
func (n *Node) lookup(p int) *replica {
	if p < 0 || p >= len(n.parts) {
		return nil
	}
	return n.parts[p]
}

// SetRing adopts a newer ring: every partition whose chain changed (or
// that has not adopted a chain since start) follows its new chain. Older
// or equal epochs are ignored. A RepEpoch report follows once adopted.
func (n *Node) SetRing(now Mono, r *ringmeta.Ring) {
	if n.stopped || r == nil || r.Epoch <= n.epoch {
		return
	}
	n.ring, n.epoch = r, r.Epoch
	for p, ch := range r.Chains {
		n.part(p).adopt(now, ch, r.Epoch)
	}
	n.rd.Reports = append(n.rd.Reports, Report{Kind: RepEpoch, Epoch: r.Epoch})
	n.check()
}

// EtcdContact records that a linearizable etcd read started at start
// succeeded and that any newer ring it returned was given to SetRing.
func (n *Node) EtcdContact(start Mono) {
	if !n.etcdOK || start > n.etcdContact {
		n.etcdContact, n.etcdOK = start, true
	}
}

// etcdFresh reports whether the last etcd contact is recent enough to
// grant leases or to serve as a sole member: within L/2.
func (n *Node) etcdFresh(now Mono) bool {
	return n.etcdOK && now-n.etcdContact < n.cfg.Lease/2
}

// Ready returns what the node asks of its shell and clears it. The shell
// must call Advance with the statuses of the head applies (StorageOp with
// NeedStatus) before giving the node another input. The Ready's slices are
// valid until the next call to Ready, which reuses their arrays (elements
// are values; copy one to keep it).
func (n *Node) Ready() Ready {
	if len(n.toSync) > 0 {
		n.syncGen++
		n.syncQ = append(n.syncQ, syncBatch{id: n.syncGen, ups: n.toSync})
		n.toSync = nil
		n.rd.Sync = n.syncGen
	}
	rd := n.rd
	p := &n.prevRd
	n.rd = Ready{Storage: reuse(p.Storage), Msgs: reuse(p.Msgs), Snapshots: reuse(p.Snapshots),
		Answers: reuse(p.Answers), Reports: reuse(p.Reports), Committed: reuse(p.Committed)}
	n.prevRd = rd
	return rd
}

// reuse empties s for appending anew, dropping what its elements point to.
// Under load a node returns a Ready per step, and growing its slices afresh
// each time was a sixth of a server's allocations.
func reuse[T any](s []T) []T {
	clear(s)
	return s[:0]
}

// HasReady reports whether Ready has anything.
func (n *Node) HasReady() bool { return !n.rd.Empty() || len(n.toSync) > 0 }

// Advance takes what the shell computed for the applies of the last Ready
// that asked (NeedStatus, NeedPrior), in order: a head entry's answer, and
// its ops as resolved, which is what goes down the chain (the shell sends
// the Ready's messages after Advance, and they carry the entries
// themselves); a tail's prior record of the entry's key.
func (n *Node) Advance(outs []storage.Outcome) {
	for i, o := range n.needSt {
		if i >= len(outs) {
			break
		}
		if o.prior {
			o.setPrior(outs[i].Prior)
		}
		if le := o.le; !le.statusKnown {
			le.e.Status, le.e.Res = outs[i].Status, outs[i].Result
			if outs[i].Ops != nil {
				le.e.Ops = outs[i].Ops
			}
			le.statusKnown = true
		}
	}
	n.needSt = reuse(n.needSt)
}

// SyncDone tells the node that the WAL sync id (and every earlier one) is
// durable: everything applied before it was requested is synced.
func (n *Node) SyncDone(now Mono, id uint64) {
	k := 0
	dirty := n.synced[:0]
	for k < len(n.syncQ) && n.syncQ[k].id <= id {
		for _, ps := range n.syncQ[k].ups {
			if r := n.lookup(ps.p); r != nil && r.gen == ps.gen && r.markSynced(ps.seq) {
				dirty = append(dirty, r)
			}
		}
		k++
	}
	n.syncQ = n.syncQ[k:]
	// In partition order, as a walk over every partition would (a server
	// has hundreds; a sync covers a few).
	slices.SortFunc(dirty, func(a, b *replica) int { return cmp.Compare(a.p, b.p) })
	for i, r := range dirty {
		r.syncDirty = false
		r.onSynced(now)
		dirty[i] = nil
	}
	n.synced = dirty[:0]
	n.check()
}

// NextDeadline is when the node next wants a Tick.
func (n *Node) NextDeadline() Mono { return n.lastTick + n.cfg.TickInterval }

// Tick runs the timers: retransmissions, hellos, snapshot requests, acks
// and answers held back, lease renewals and dedup expiry. wallMs is the
// node's wall clock (dedup retention).
func (n *Node) Tick(now Mono, wallMs int64) {
	if n.stopped {
		return
	}
	n.lastTick = now
	for _, r := range n.parts {
		if r != nil {
			r.tick(now)
		}
	}
	n.renewLeases(now)
	if wallMs-n.lastGC >= 1000 {
		n.lastGC = wallMs
		for _, r := range n.parts {
			if r != nil {
				r.forgetOld(wallMs - n.cfg.DedupRetentionMs)
			}
		}
	}
	n.check()
}

// Stop fails every waiting call; the node takes no more input.
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	for _, r := range n.parts {
		if r != nil {
			r.failWaiters(ErrStopped)
			r.failReads(ErrStopped)
		}
	}
	n.stopped = true
}

func (n *Node) send(m Msg) {
	if m.To == "" || m.To == n.cfg.ID {
		return
	}
	m.From = n.cfg.ID
	n.rd.Msgs = append(n.rd.Msgs, m)
}

func (n *Node) answer(token uint64, st kvpb.Status, err error) {
	n.rd.Answers = append(n.rd.Answers, Answer{Token: token, Status: st, Err: err})
}

func (n *Node) answerWrite(h heldAnswer) {
	n.rd.Answers = append(n.rd.Answers, Answer{Token: h.token, Status: h.st, Seq: h.seq, Res: h.res})
}

func (n *Node) store(op StorageOp) { n.rd.Storage = append(n.rd.Storage, op) }

func (n *Node) report(rep Report) { n.rd.Reports = append(n.rd.Reports, rep) }

// Partitions returns the partitions this node has state for, in order.
func (n *Node) Partitions() []int {
	var out []int
	for p, r := range n.parts {
		if r != nil {
			out = append(out, p)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
