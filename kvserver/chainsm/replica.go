package chainsm

import (
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

const storageMaxPartitions = storage.MaxPartitions

// replica is this server's state for one partition.
//
// Invariants (check.go): committed <= synced <= applied; log holds exactly
// the entries truncated < seq <= applied, in order; dirty[k] is the last
// seq writing k, kept while it is above committed.
type replica struct {
	n   *Node
	p   int
	gen uint64 // bumped when the partition's storage is replaced (drop, ingest)

	// Position in the chain, from the ring.
	known   bool // a chain was adopted since start
	ver     uint64
	since   uint64 // epoch in which ver was adopted
	members []string
	idx     int // -1: not a member
	pred    string
	succ    string
	learner string // the chain's learner, named at the tail only

	// Sequence state.
	applied   uint64
	synced    uint64
	committed uint64
	truncated uint64 // log records <= truncated are gone from storage
	log       []*logEntry
	dirty     map[string]uint64
	// prior (tail): the last committed record of keys with a write in
	// flight (Seq 0: none), where known; a read of such a key gets it
	// instead of waiting for the write to commit (read.go).
	prior map[string]storage.Record
	// priorFloor (tail): writes at or below it may have committed, and
	// been acknowledged, before this member was the tail at this version
	// (an old tail committed them; the watermark that lets this one commit
	// them may still be on its way): they are not in flight, so a read of
	// their key waits for their commit here instead of taking its prior.
	priorFloor uint64
	dedup      dedupTable
	syncDirty  bool // synced moved; onSynced is due
	stored     bool // storage may hold something of the partition

	// upSynced: every seq <= upSynced is synced on every member above this
	// one (the predecessor's watermark, at this version). sentSynced is the
	// watermark last passed down.
	upSynced   uint64
	sentSynced uint64
	sentCommit uint64 // the commit point last passed down (MsgUpdate Trunc)
	// upLagAt: since when upSynced has stayed at upLagSeen, below synced
	// (0: it has not; upLagTick).
	upLagAt   Mono
	upLagSeen uint64
	// reconciled: the successor holds nothing this member lacks. False
	// after a start (entries forwarded before their sync may be lost in a
	// crash) and after every chain change (a reorder may have left entries
	// below that this member lacks);
	// a head sequences nothing, and a member answers no probe, until a
	// probe of its successor brought them back (probe.go).
	reconciled bool
	probeAt    Mono
	probedBy   *Msg // the predecessor's probe that waits for ours

	holdUntil Mono
	ackedUp   uint64 // last ack sent to the predecessor
	directUp  uint64 // tail: last ack sent straight to the members above the predecessor
	ackAgain  bool   // the predecessor may have lost our ack: send it again
	downAcked uint64 // the successor (or learner) holds everything <= downAcked
	reads     []pendingRead
	held      []heldAnswer // committed writes answered once the holdback is over

	// Hello with the predecessor after adopting a version.
	helloDone bool
	helloAt   Mono
	syncTo    uint64
	// unsynced: the hello with the predecessor at this version has not
	// ended, so this member may lack what the predecessor held (a promoted
	// learner, a restarted member): it serves no reads.
	unsynced bool
	// marked: the ECS may still hold this member's unsynced mark. Unlike
	// reportSync it outlives the report, and it is stored with the chain
	// version (StVersion Unsynced): until the ECS consumed a report it may
	// lose it (queued in a shell that crashed, or discounted as an
	// earlier incarnation's), and only the member can make another.
	marked bool
	// reportSync: say so to the ECS once in sync (it marks promoted
	// learners unsynced, and a restart may have lost an earlier report).
	reportSync bool
	nackAt     Mono
	gapTo      uint64 // an update arrived for this seq past a gap: nack until applied

	// The tail's feed to its learner.
	feeding  bool
	feedSent uint64
	feedAt   Mono

	// A member that lacks entries its predecessor no longer keeps copies
	// the partition from it (copying), then says hello again.
	copying   bool
	ingesting bool   // a snapshot is in storage but not yet synced
	snapFor   string // head: a snapshot asked for while entries were unsynced

	// Learner state.
	learning  bool
	installed bool
	snapAt    Mono
	ackAt     Mono // last ack sent to the tail
	buf       []*Entry
	readyDone bool

	// Reports are repeated a few times: the ECS deletes report keys it has
	// read, and a report written just after that read would be lost.
	repAt   Mono
	repLeft int
}

type logEntry struct {
	e           *Entry
	statusKnown bool
	sent        bool
	sentAt      Mono
	waiters     []uint64
	dedupPos    uint64 // its dedup record's position + 1 (0: none)
}

// outcomeFor is an apply of the last Ready whose outcome Advance brings:
// a head's answer, or a tail's prior record of the entry's key.
type outcomeFor struct {
	le    *logEntry
	r     *replica
	gen   uint64
	ver   uint64
	prior bool
}

// setPrior records, at the tail, what Advance brought for o: the record
// the key held before o's entry, committed (its key had no write in
// flight), unless the replica moved on since (a reset, a chain change, a
// commit of the entry).
func (o outcomeFor) setPrior(rec *storage.Record) {
	r, e := o.r, o.le.e
	if rec == nil || r.gen != o.gen || r.ver != o.ver || !r.isTail() || e.Seq <= r.committed {
		return
	}
	k := dirtyKey(e.Ops[0].NS, e.Ops[0].Key)
	if _, ok := r.prior[k]; ok || r.dirty[k] < e.Seq {
		return
	}
	if r.prior == nil {
		r.prior = map[string]storage.Record{}
	}
	r.prior[k] = *rec
}

type pendingRead struct {
	token uint64
	key   string
}

type heldAnswer struct {
	token uint64
	st    kvpb.Status
	seq   uint64
	res   storage.Result
}

func newReplica(n *Node, p int) *replica {
	return &replica{n: n, p: p, idx: -1, dirty: map[string]uint64{}, reconciled: true}
}

func (r *replica) member() bool { return r.known && r.idx >= 0 && !r.learning }
func (r *replica) isHead() bool { return r.member() && r.idx == 0 }
func (r *replica) isTail() bool { return r.member() && r.succ == "" }

// dirtyKey is the CRAQ dirty-set key of an op.
func dirtyKey(ns, key []byte) string { return string(ns) + "\x00" + string(key) }

// find returns the log entry with seq, or nil.
func (r *replica) find(seq uint64) *logEntry {
	if len(r.log) == 0 || seq < r.log[0].e.Seq {
		return nil
	}
	if i := int(seq - r.log[0].e.Seq); i < len(r.log) {
		return r.log[i]
	}
	return nil
}

// appendEntry applies e here: storage, log, dirty set, dedup table.
func (r *replica) appendEntry(e *Entry, needStatus bool) *logEntry {
	r.applied = e.Seq
	le := &logEntry{e: e, statusKnown: !needStatus}
	r.log = append(r.log, le)
	// A tail asks for the committed record of a key that had no write in
	// flight, to serve reads of it while this one is.
	needPrior := r.isTail() && len(e.Ops) == 1 && r.dirty[dirtyKey(e.Ops[0].NS, e.Ops[0].Key)] <= r.committed
	for _, o := range e.Ops {
		r.dirty[dirtyKey(o.NS, o.Key)] = e.Seq
	}
	r.dedup.add(DedupRecord{ID: e.ID, Seq: e.Seq, Status: e.Status, WallMs: e.WallMs, Sum: e.sum(), Res: e.Res}, le)
	r.n.store(StorageOp{Kind: StApply, Part: r.p, Entry: e, NeedStatus: needStatus, NeedPrior: needPrior})
	r.stored = true
	if needStatus || needPrior {
		r.n.needSt = append(r.n.needSt, outcomeFor{le: le, r: r, gen: r.gen, ver: r.ver, prior: needPrior})
	}
	r.n.toSync = append(r.n.toSync, partSeq{r.p, r.gen, e.Seq})
	return le
}

// markSynced raises synced to seq; it reports whether onSynced became due
// (the first rise since the last onSynced).
func (r *replica) markSynced(seq uint64) bool {
	if seq < r.synced || seq > r.applied {
		return false
	}
	r.synced = seq
	r.ingesting = false
	due := !r.syncDirty
	r.syncDirty = true
	return due
}

// reset forgets everything of the partition (its storage was dropped or is
// being replaced).
func (r *replica) reset() {
	r.gen++
	r.applied, r.synced, r.committed, r.truncated = 0, 0, 0, 0
	r.log, r.dirty, r.prior, r.priorFloor = nil, map[string]uint64{}, nil, 0
	r.dedup = dedupTable{}
	r.ackedUp, r.directUp, r.downAcked, r.ackAgain = 0, 0, 0, false
	r.feeding, r.feedSent = false, 0
	r.learning, r.installed, r.buf, r.readyDone = false, false, nil, false
	r.copying, r.ingesting, r.snapFor = false, false, ""
	r.unsynced, r.reportSync, r.marked, r.syncTo, r.helloDone = false, false, false, 0, false
	r.upSynced, r.sentSynced, r.sentCommit, r.reconciled = 0, 0, 0, true
}

// chainSynced is the watermark this member passes down: every seq <= it is
// synced here and on every member above.
func (r *replica) chainSynced() uint64 {
	if r.pred == "" || canaryTailSynced && r.succ == "" {
		return r.synced
	}
	return min(r.synced, r.upSynced)
}

// drop deletes the partition's storage, if it holds anything.
func (r *replica) drop() {
	r.reset()
	if r.stored {
		r.stored = false
		r.n.store(StorageOp{Kind: StDrop, Part: r.p})
	}
}

// failWaiters fails every client write waiting here.
func (r *replica) failWaiters(err error) {
	for _, le := range r.log {
		for _, t := range le.waiters {
			r.n.answer(t, 0, err)
		}
		le.waiters = nil
	}
	for _, h := range r.held {
		r.n.answer(h.token, 0, err)
	}
	r.held = nil
}

func (r *replica) failReads(err error) {
	for _, rd := range r.reads {
		r.n.answer(rd.token, 0, err)
	}
	r.reads = nil
}
