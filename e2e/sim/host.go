package sim

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/sim/etcdmodel"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/chainstore"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// host is one kvserver: the real chain state machine driven by a shell
// like the kvserver's, with the sim's disk, clock and network.
type host struct {
	s    *Sim
	id   string
	clk  clock
	up   bool
	gen  int // incarnation: events of an older one are ignored
	node *chainsm.Node
	disk *disk
	// broken: its storage did not open after a crash, or did not recover;
	// it stays down (the failure is recorded).
	broken bool
	lease  etcdmodel.LeaseID
	// registered: the membership key is written under lease.
	registered bool
	calls      map[uint64]call
	token      uint64
	reports    map[string]string // etcd key -> value still to write
	syncDone   int64             // when the last requested sync completes
	syncMean   int64             // mean sync latency now (a slow disk raises it)
	// baseSyncMean is the disk's own mean sync latency.
	baseSyncMean int64
	pausedTill   int64
	// ring is the last ring read, parsed from ringRaw (parsing each
	// read anew costs more than everything else a ping does).
	ring    *ringmeta.Ring
	ringRaw []byte
}

// call is a client request waiting at this host.
type call struct {
	client  *client
	attempt uint64
	read    bool
	part    int
	key     string
	id      chainsm.ReqID // a write's request id
}

func (h *host) mono() chainsm.Mono { return chainsm.Mono(h.clk.mono(h.s.now)) }
func (h *host) wall() int64        { return h.clk.wallMs(h.s.now) }

// alive reports whether an event of incarnation gen may run now; a paused
// host runs it when the pause ends.
func (h *host) alive(gen int, fn func()) bool {
	if !h.up || h.gen != gen {
		return false
	}
	if h.pausedTill > h.s.now {
		h.s.at(h.pausedTill, fn)
		return false
	}
	return true
}

// later runs fn after d of this host's clock, in this incarnation.
func (h *host) later(d int64, fn func()) {
	gen := h.gen
	var run func()
	run = func() {
		if h.alive(gen, run) {
			fn()
		}
	}
	h.s.after(h.clk.trueSpan(d), run)
}

// start boots the server on its disk: recover, register, follow the ring.
func (h *host) start() {
	if h.broken {
		return // its storage does not open: a kvserver would not start
	}
	h.gen++
	h.up, h.registered, h.lease = true, false, 0
	h.calls, h.reports = map[uint64]call{}, map[string]string{}
	h.node = chainsm.New(chainsm.Config{ID: h.id, Check: true, Lease: chainsm.Mono(h.s.opt.Lease),
		DedupRetentionMs: h.s.opt.DedupRetention.Milliseconds()})
	if err := chainstore.Recover(h.disk.st, h.node); err != nil {
		h.s.fail("%s: recover: %v", h.id, err)
		h.up, h.broken = false, true
		return
	}
	h.register()
	h.tickLoop()
	h.pingLoop()
}

// crash stops the process; the disk keeps what a power loss keeps: a
// seeded prefix of the batches written since the last sync.
func (h *host) crash() {
	if !h.up {
		return
	}
	keep := 0
	if n := len(h.disk.pending); n > 0 {
		keep = h.s.faults.IntN(n + 1)
	}
	h.crashKeep(keep)
}

// crashKeep stops the process; the disk keeps the synced state and the
// first keep batches written since the last sync.
func (h *host) crashKeep(keep int) {
	if !h.up {
		return
	}
	h.up = false
	h.gen++
	d, err := h.disk.crash(min(keep, len(h.disk.pending)))
	if err != nil {
		h.s.fail("%s: crash image: %v", h.id, err)
		h.broken = true
		return
	}
	h.disk = d
}

// failStop stops the process after a storage error, as the kvserver does.
func (h *host) failStop(err error) {
	h.s.count("storage-fail-stop")
	h.s.fail("%s: storage: %v", h.id, err)
}

func (h *host) tickLoop() {
	h.later(int64(h.node.Config().TickInterval), func() {
		h.node.Tick(h.mono(), h.wall())
		h.drain()
		h.tickLoop()
	})
}

// drain carries out everything the node asks for, through the shell
// the kvserver uses (chainstore.Drain).
func (h *host) drain() {
	if err := chainstore.Drain(h.node, hostShell{h}); err != nil {
		h.failStop(err)
	}
	if err := h.node.Violation(); err != nil {
		h.s.fail("invariant: %v", err)
	}
}

// hostShell is the host's chainstore.Shell.
type hostShell struct{ h *host }

func (x hostShell) Apply(ops []chainsm.StorageOp) ([]storage.Outcome, error) {
	for _, op := range ops {
		x.h.checkApply(op)
	}
	return x.h.disk.apply(ops, x.h.wall())
}

func (x hostShell) Sync(id uint64) { x.h.requestSync(id) }

// Committed: the simulator has no watchers.
func (x hostShell) Committed(chainsm.Committed) {}

func (x hostShell) Snapshot(ss chainsm.SnapshotSend) {
	h := x.h
	recs, err := h.disk.snapshot(ss.Part)
	if err != nil {
		h.failStop(err)
		return
	}
	h.checkDurable(ss.Part, ss.Seq, "copied in a snapshot")
	h.s.sendMsg(chainsm.Msg{Kind: chainsm.MsgSnapshot, From: h.id, To: ss.To, Part: ss.Part, Ver: ss.Ver,
		Seq: ss.Seq, Dedup: ss.Dedup, Snap: recs})
}

func (x hostShell) Answer(a chainsm.Answer) { x.h.answer(a) }

// Send checks, as a copy leaves, that it holds only what no crash of the
// chain can take back: synced on every member of the chain the sender is
// in when it sends. Checked on arrival instead, a feed that a clogged link
// held back past a chain change was judged by the next chain's members
// (sim seed 0x18eef8d7b6e518ae: sent at version 5 by the sole member,
// delivered at version 6 to a receiver that drops it as stale).
func (x hostShell) Send(m chainsm.Msg) {
	if m.Kind == chainsm.MsgUpdate && m.Learner && len(m.Entries) > 0 {
		x.h.checkDurable(m.Part, m.Entries[len(m.Entries)-1].Seq, "fed to a learner")
	}
	x.h.s.sendMsg(copyMsg(m))
}
func (x hostShell) Report(r chainsm.Report) { x.h.report(r) }

// checkApply is a ledger check: a client write is applied at one seq only
// (DESIGN §4 idempotence), on this member as on every other.
func (h *host) checkApply(op chainsm.StorageOp) {
	if op.Kind != chainsm.StApply || op.Entry.ID == (chainsm.ReqID{}) {
		return
	}
	if seq, ok := h.disk.dedupSeq(op.Part, op.Entry.ID); ok && seq != op.Entry.Seq {
		h.s.fail("%s partition %d: request %v applied twice, at seqs %d and %d", h.id, op.Part, op.Entry.ID, seq, op.Entry.Seq)
	}
}

// requestSync completes WAL syncs in order, each after a sampled latency.
func (h *host) requestSync(id uint64) {
	done := max(h.s.now+50_000+expDur(h.s.diskRng, h.syncMean), h.syncDone)
	h.syncDone = done
	gen := h.gen
	var run func()
	run = func() {
		if h.alive(gen, run) {
			if err := h.disk.sync(); err != nil {
				h.failStop(err)
				return
			}
			h.node.SyncDone(h.mono(), id)
			h.drain()
		}
	}
	h.s.at(done, run)
}

func (h *host) answer(a chainsm.Answer) {
	c, ok := h.calls[a.Token]
	if !ok {
		return
	}
	delete(h.calls, a.Token)
	rep := reply{attempt: c.attempt, err: a.Err, status: a.Status, value: string(a.Res.Value), version: a.Seq}
	if a.Status == kvpb.Status_CONDITION_FAILED {
		rep.version = a.Res.Version
	}
	if c.read && a.Err == nil {
		rep.value, rep.found, rep.version, rep.err = h.readKey(c.part, c.key, nil)
	}
	if !c.read && a.Err == nil {
		if seq, ok := h.disk.dedupSeq(c.part, c.id); ok {
			h.s.acked(h.id, c.part, seq, c.id)
			h.checkDurable(c.part, seq, "acknowledged")
		}
	}
	h.s.reply(h.id, c.client, rep)
}

// checkDurable is the durability invariant: a write is acknowledged, and a
// value returned by a read, only once it is synced on every member of the
// chain (a crash now would keep it everywhere). A member that has moved on to a newer chain version may
// have dropped the partition or be copying it afresh: the ECS's rules, not
// this member, keep the write then; so do they for a promoted member before
// its sync with its predecessor ended (it is marked unsynced in etcd).
func (h *host) checkDurable(p int, seq uint64, what string) {
	in, _ := h.node.Info(p)
	for _, id := range in.Members {
		m := h.s.byID[id]
		if mi, ok := m.node.Info(p); id != h.id && (!ok || mi.Ver != in.Ver || mi.Unsynced) {
			continue
		}
		if d := m.disk.durableApplied(p); d < seq {
			h.s.fail("%s partition %d: seq %d %s at chain version %d %v, but %s has synced only up to %d",
				h.id, p, seq, what, in.Ver, in.Members, id, d)
		}
	}
}

// readKey reads a key the chain allowed this member to serve now, as the
// kvserver does (chainstore.Read): from storage, or the record prior the
// node gave (the key's last committed one while a write is in flight).
func (h *host) readKey(p int, key string, prior *storage.Record) (string, bool, uint64, error) {
	r, ok, err := chainstore.Read(h.disk.st, p, nil, []byte(key), prior, h.wall(), maxSkewMs)
	if errors.Is(err, chainsm.ErrNotReady) {
		h.s.count("read-near-expiry")
	}
	switch {
	case prior != nil:
		h.s.count("read-prior")
		if prior.Seq != 0 && err == nil {
			h.checkDurable(p, prior.Seq, "returned by a read (the last committed record)")
		}
	default:
		if rec, found, _ := h.disk.st.Get(p, nil, []byte(key), 0); found && err == nil {
			h.checkDurable(p, rec.Seq, "returned by a read")
		}
	}
	return string(r.Value), ok, r.Seq, err
}

// onMsg takes a peer message.
func (h *host) onMsg(m chainsm.Msg) {
	if m.Kind == chainsm.MsgSnapshot {
		// The records are written first, as the kvserver's transfer does.
		err := h.disk.ingest(h.node, m.Part, m.Ver, m.Snap.([]storage.Entry))
		if errors.Is(err, chainstore.ErrNotLearning) {
			return
		}
		if err != nil {
			h.failStop(err)
			return
		}
		m.Snap = nil
	}
	h.node.Step(h.mono(), m)
	h.drain()
}

// onRequest serves a client request as the kvserver's handlers do.
func (h *host) onRequest(c *client, rq request) {
	h.token++
	tok := h.token
	cl := call{client: c, attempt: rq.attempt, read: rq.kind == opGet, part: rq.part, key: rq.key, id: rq.id}
	rep := reply{attempt: rq.attempt}
	if rq.kind == opGet {
		serve, prior, err := h.node.Read(h.mono(), rq.part, chainsm.ReadReq{Token: tok, Ver: rq.ver, Key: []byte(rq.key), AnyMember: rq.anyMember})
		switch {
		case err != nil:
			rep.err = err
		case serve:
			rep.status = kvpb.Status_SUCCESS
			rep.value, rep.found, rep.version, rep.err = h.readKey(rq.part, rq.key, prior)
		default:
			h.calls[tok] = cl
			h.drain()
			return
		}
		h.s.reply(h.id, c, rep)
		return
	}
	pr := chainsm.Proposal{Token: tok, Ver: rq.ver, ID: rq.id, Ops: rq.ops(h.wall()), WallMs: h.wall()}
	if err := h.node.Propose(h.mono(), rq.part, pr); err != nil {
		rep.err = err
		h.s.reply(h.id, c, rep)
		return
	}
	h.calls[tok] = cl
	h.drain()
}

// report queues an etcd write for the ECS; the ping loop writes it.
func (h *host) report(r chainsm.Report) {
	switch r.Kind {
	case chainsm.RepReady:
		h.reports[readyKey(h.id, r.Part)] = fmt.Sprintf("%d/%d", r.Ver, h.gen)
	case chainsm.RepSynced:
		h.reports[syncedKey(h.id, r.Part)] = fmt.Sprintf("%d/%d", r.Ver, h.gen)
	}
}

// register writes the membership key under a fresh lease.
func (h *host) register() {
	h.s.etcdCall(h.id, func(now etcdmodel.Time) any {
		id := h.s.etcd.Grant(now, h.s.opt.MemberTTL)
		_, err := h.s.etcd.Put(now, memberKey(h.id), []byte(fmt.Sprint(h.gen)), id)
		if err != nil {
			return etcdmodel.LeaseID(0)
		}
		return id
	}, h.gen, func(v any) {
		if id := v.(etcdmodel.LeaseID); id != 0 {
			h.lease, h.registered = id, true
		}
	})
}

// pingLoop reads the ring linearizably every L/4 (fresh etcd contact for
// leases, and ring changes), keeps the membership lease alive, and writes
// queued reports.
func (h *host) pingLoop() {
	h.later(h.s.opt.Lease/4, func() {
		h.ping()
		h.pingLoop()
	})
}

func (h *host) ping() {
	if !h.registered {
		h.register() // the last attempt may have been lost
	}
	start := h.mono()
	lease, registered := h.lease, h.registered
	reports := sortedMap(h.reports)
	h.s.etcdCall(h.id, func(now etcdmodel.Time) any {
		res := pingResult{leaseOK: true}
		if registered {
			// The record must be under our lease: a slower, earlier
			// registration may have written it under another one.
			kv, ok := h.s.etcd.Get(memberKey(h.id))
			res.leaseOK = h.s.etcd.KeepAlive(now, lease) == nil && ok && kv.Lease == lease
		}
		if kv, ok := h.s.etcd.Get(ringKey); ok {
			res.ring = kv.Value
		}
		for _, kv := range reports {
			if _, err := h.s.etcd.Put(now, kv[0], []byte(kv[1]), 0); err == nil {
				res.written = append(res.written, kv)
			}
		}
		return res
	}, h.gen, func(v any) {
		res := v.(pingResult)
		if res.ring != nil {
			if !bytes.Equal(res.ring, h.ringRaw) {
				r, err := ringmeta.Unmarshal(res.ring)
				if err != nil {
					h.s.fail("%s: bad ring: %v", h.id, err)
					return
				}
				h.ring, h.ringRaw = r, res.ring
			}
			h.node.SetRing(h.mono(), h.ring)
		}
		h.node.EtcdContact(start)
		for _, kv := range res.written {
			if h.reports[kv[0]] == kv[1] {
				delete(h.reports, kv[0])
			}
		}
		if !res.leaseOK && h.lease == lease {
			h.registered = false
			h.register()
		}
		h.drain()
	})
}

type pingResult struct {
	leaseOK bool
	ring    []byte
	written [][2]string
}
