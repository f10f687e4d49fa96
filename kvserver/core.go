package kvserver

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/chainstore"
	"github.com/ecskv/ecskv/kvserver/storage"
	"go.uber.org/zap"
)

// core is the I/O shell around the chain protocol (package chainsm): it
// feeds the state machine its inputs and carries out its Ready — storage
// writes here, WAL syncs by the sync loop, messages through the peer set,
// answers to the waiting calls, reports to etcd.
//
// Locking: mu guards the node and every field below it. Each input runs
// under mu together with the storage writes of its Ready, so what storage
// holds always matches what the node believes; reads of a key the node
// says is clean happen under mu too, before any later write can apply.
// Sending, answering and syncing happen after mu is released.
type core struct {
	s  *Server
	t0 time.Time

	mu      sync.Mutex
	node    *chainsm.Node
	token   uint64
	waits   map[uint64]*waiter
	early   []answered // done waiters refused before the node took them
	syncReq uint64     // highest WAL sync asked for
	syncAt  time.Time  // when the oldest sync not yet started was asked for
	// syncSteps counts the steps that asked for a sync since the sync loop
	// last took what was asked (syncPacer).
	syncSteps int
	snaps     map[snapKey]*snapTx // tail: snapshots taken for learners, until their stream takes them
	pulling   map[int]bool        // learner: partitions with a snapshot stream running

	qmu   sync.Mutex // guards q and spare; taken inside mu or alone
	q     []input    // inputs waiting for mu (see do)
	spare []input    // q's other buffer

	syncKick chan struct{}
	loopKick chan struct{} // capacity 1: post queued an input
	adopted  atomic.Uint64 // epoch of the ring every partition adopted
	stats    chainsm.Stats // the node's counters as last exported; under mu

	adoptMu sync.Mutex
	adoptCh chan struct{} // closed (and replaced) whenever the node adopts a ring
	snapCh  chan struct{} // closed (and replaced) whenever a snapshot is taken; under mu
}

// waiter is a client call waiting for its answer: on ch, or, for a write
// of a Batch stream, by done (called once, outside mu, by whoever removes
// the waiter from waits).
type waiter struct {
	tok  uint64
	ch   chan chainsm.Answer
	done func(chainsm.Answer)
	// owner is the Batch stream of a done waiter, whose end fails it.
	owner *batchWrites
	read  *readCall // a read: storage is read under mu when it may be served
	rec   storage.Record
	ok    bool
	err   error
}

type readCall struct {
	p       int
	ns, key []byte
}

// answered is a waiter's answer, to hand over outside mu.
type answered struct {
	w *waiter
	a chainsm.Answer
}

// output is what a drained Ready leaves to do once mu is released.
type output struct {
	msgs    []chainsm.Msg // snapshot requests (the rest went to the peers under mu)
	peers   []*peer       // peers with messages queued, to wake
	answers []chainsm.Answer
	wake    []*waiter
	reports []chainsm.Report
	sync    bool
}

func newCore(s *Server) *core {
	return &core{
		s: s, t0: time.Now(),
		node:     chainsm.New(chainsm.Config{ID: s.cfg.ID, Lease: chainsm.Mono(leaseDuration)}),
		waits:    map[uint64]*waiter{},
		snaps:    map[snapKey]*snapTx{},
		pulling:  map[int]bool{},
		syncKick: make(chan struct{}, 1),
		loopKick: make(chan struct{}, 1),
		adoptCh:  make(chan struct{}),
		snapCh:   make(chan struct{}),
	}
}

func (c *core) now() chainsm.Mono { return chainsm.Mono(time.Since(c.t0)) }

// recover loads what storage kept of every partition into the node.
func (c *core) recover() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := chainstore.Recover(c.s.store, c.node); err != nil {
		return fmt.Errorf("kvserver: %w", err)
	}
	return nil
}

// input is one input waiting for mu: a write to propose, or a function of
// the node (a peer's messages, a sync's completion, a tick).
type input struct {
	f  func(n *chainsm.Node)
	qp queuedProposal // when f is nil
}

// do runs one input under mu and carries out what it asked for.
//
// Inputs arriving together run together (flat combining): each caller
// queues its input, then whoever gets mu runs everything queued, in
// arrival order, and drains the node once. A burst of inputs from clients,
// peers and the sync loop so costs one storage batch, one WAL write and
// one message per peer instead of one of each per input; under load that
// is most of a write's CPU. A caller whose input another ran returns once
// it gets mu: the input's storage writes are done and its messages are
// queued for the peers; its answers go out with that caller's dispatch.
func (c *core) do(f func(n *chainsm.Node)) { c.run(input{f: f}) }

// run queues in and runs the queue unless another caller already did.
func (c *core) run(in input) {
	c.qmu.Lock()
	c.q = append(c.q, in)
	c.qmu.Unlock()
	c.runQueue()
}

// maxPosted bounds the inputs post queues for the loop; beyond it a
// caller runs the queue itself (waiting for mu), so a node that falls
// behind slows the peers' streams instead of queueing without end.
const maxPosted = 64

// post queues in for the loop goroutine and returns: its caller (a peer's
// stream, the sync loop) goes back to its own work at once, and whatever
// arrives before the loop gets to run runs with it, in one step. Under
// load that is what batches a server's work: peer messages and sync
// completions posted this way went from about one step each to about
// two in three, and each hop of a write got 40% shorter (make profile).
// A client's write is run by its own goroutine instead (run): it waits
// for its answer anyway, and handing it to the loop was slower.
func (c *core) post(in input) {
	c.qmu.Lock()
	c.q = append(c.q, in)
	n := len(c.q)
	c.qmu.Unlock()
	if n > maxPosted {
		c.runQueue()
		return
	}
	select {
	case c.loopKick <- struct{}{}:
	default:
	}
}

// loop runs what post queued.
func (c *core) loop() {
	for {
		select {
		case <-c.loopKick:
		case <-c.s.ctx.Done():
			return
		}
		c.runQueue()
	}
}

// runQueue runs every queued input under mu, then dispatches once.
func (c *core) runQueue() {
	t0 := time.Now()
	c.mu.Lock()
	t1 := time.Now()
	c.qmu.Lock()
	q := c.q
	c.q, c.spare = c.spare[:0], q
	c.qmu.Unlock()
	if len(q) == 0 {
		c.mu.Unlock()
		return
	}
	now := c.now()
	for i := range q {
		if q[i].f != nil {
			q[i].f(c.node)
		} else {
			c.proposeLocked(now, &q[i].qp)
		}
		q[i] = input{}
	}
	out := c.drainLocked()
	c.mu.Unlock()
	c.s.metrics.stage.lock.Observe(t1.Sub(t0).Seconds())
	c.s.metrics.stage.step.Observe(time.Since(t1).Seconds())
	c.dispatch(out)
}

// drainLocked carries out the node's storage writes and collects the rest.
func (c *core) drainLocked() output {
	d := drainer{c: c}
	for _, e := range c.early {
		d.out.answers, d.out.wake = append(d.out.answers, e.a), append(d.out.wake, e.w)
	}
	clear(c.early)
	c.early = c.early[:0]
	if err := chainstore.Drain(c.node, &d); err != nil {
		// Storage that fails a write cannot keep the protocol's promises:
		// stop serving (the ECS fails the server over).
		c.s.lg.Error("storage write failed; stopping", zap.Error(err))
		go c.s.Stop()
	}
	c.exportStatsLocked()
	return d.out
}

// exportStatsLocked adds to the metrics what the node counted since the
// last call.
func (c *core) exportStatsLocked() {
	st, m := c.node.Stats(), c.s.metrics
	if d := st.Resent - c.stats.Resent; d > 0 {
		m.resent.Add(float64(d))
	}
	if d := st.PriorReads - c.stats.PriorReads; d > 0 {
		m.priorReads.Add(float64(d))
	}
	if d := st.DroppedGap - c.stats.DroppedGap; d > 0 {
		m.dropped.WithLabelValues(dropGap).Add(float64(d))
	}
	if d := st.DroppedVer - c.stats.DroppedVer; d > 0 {
		m.dropped.WithLabelValues(dropVersion).Add(float64(d))
	}
	c.stats = st
}

// drainer is the kvserver's chainstore.Shell: storage writes and peer
// messages happen at once, under mu; the rest is collected for dispatch
// after mu is released.
type drainer struct {
	c   *core
	out output
}

func (d *drainer) Apply(ops []chainsm.StorageOp) ([]storage.Outcome, error) {
	start := time.Now()
	sts, err := chainstore.ApplyGroup(d.c.s.store, ops, nowMs())
	d.c.s.metrics.stage.apply.Observe(time.Since(start).Seconds())
	return sts, err
}

func (d *drainer) Sync(id uint64) {
	c := d.c
	if c.syncAt.IsZero() {
		c.syncAt = time.Now()
	}
	if !d.out.sync {
		c.syncSteps++
	}
	c.syncReq, d.out.sync = id, true
}

func (d *drainer) Snapshot(ss chainsm.SnapshotSend) { d.c.takeSnapshotLocked(ss) }

func (d *drainer) Answer(a chainsm.Answer) {
	c := d.c
	w, ok := c.waits[a.Token]
	if !ok {
		return
	}
	delete(c.waits, a.Token)
	if w.read != nil && a.Err == nil {
		w.rec, w.ok, w.err = c.readStoreLocked(w.read.p, w.read.ns, w.read.key)
	}
	d.out.answers = append(d.out.answers, a)
	d.out.wake = append(d.out.wake, w)
}

// Send queues m for its peer at once, under mu: messages then reach each
// peer's queue in the order the node sent them, even when two callers
// dispatch at the same time. A learner's snapshot request starts a pull
// after mu is released.
func (d *drainer) Send(m chainsm.Msg) {
	if m.Kind == chainsm.MsgSnapReq {
		d.out.msgs = append(d.out.msgs, m)
		return
	}
	p := d.c.s.peers.queue(m.To, toPBMsg(m))
	if p != nil && !slices.Contains(d.out.peers, p) {
		d.out.peers = append(d.out.peers, p)
	}
}

func (d *drainer) Report(r chainsm.Report) { d.out.reports = append(d.out.reports, r) }

// Committed hands committed entries to the watch hub under mu, so that
// they reach it in commit order; the hub only queues them.
func (d *drainer) Committed(c chainsm.Committed) { d.c.s.watch.committed(c) }

// dispatch does, outside mu, what a drained Ready left.
func (c *core) dispatch(out output) {
	for _, p := range out.peers {
		p.signal()
	}
	for _, m := range out.msgs {
		c.startPull(m) // a learner pulls its snapshot over its own stream
	}
	for i, a := range out.answers {
		if w := out.wake[i]; w.done != nil {
			w.done(a)
		} else {
			w.ch <- a // buffered: the caller may have gone
		}
	}
	for _, r := range out.reports {
		c.report(r)
	}
	if out.sync {
		select {
		case c.syncKick <- struct{}{}:
		default:
		}
	}
}

// syncLoop syncs the WAL whenever the node asked for it; one fsync covers
// every sync asked for before it started (group commit), and under load
// it starts a little later to cover more (syncPacer).
func (c *core) syncLoop() {
	var done uint64
	pace := syncPacer{delay: c.s.cfg.SyncDelay}
	if !c.s.cfg.Sync {
		pace.delay = 0 // a sync is a no-op: holding it back only delays
	}
	for {
		select {
		case <-c.syncKick:
		case <-c.s.ctx.Done():
			return
		}
		if d := pace.wait(); d > 0 {
			c.s.metrics.syncHeld.Inc()
			if !c.s.sleepCtx(d) {
				return
			}
		}
		c.mu.Lock()
		id, asked := c.syncReq, c.syncAt
		c.syncAt = time.Time{}
		pace.took(c.syncSteps)
		c.syncSteps = 0
		c.mu.Unlock()
		if id == done {
			continue
		}
		if err := c.s.store.SyncWAL(); err != nil {
			c.s.lg.Error("wal sync failed; stopping", zap.Error(err))
			go c.s.Stop()
			return
		}
		done = id
		c.post(input{f: func(n *chainsm.Node) { n.SyncDone(c.now(), id) }})
		c.s.metrics.stage.sync.Observe(time.Since(asked).Seconds())
	}
}

// tickLoop gives the node its timer ticks.
func (c *core) tickLoop() {
	for c.s.sleepCtx(time.Duration(c.node.Config().TickInterval)) {
		c.do(func(n *chainsm.Node) { n.Tick(c.now(), nowMs()) })
	}
}

// adoptNotify returns a channel closed once the node adopts its next ring.
func (c *core) adoptNotify() <-chan struct{} {
	c.adoptMu.Lock()
	defer c.adoptMu.Unlock()
	return c.adoptCh
}

// register adds a waiter under mu and returns its token.
func (c *core) registerLocked(read *readCall) (uint64, *waiter) {
	c.token++
	w := &waiter{tok: c.token, ch: make(chan chainsm.Answer, 1), read: read}
	c.waits[c.token] = w
	return c.token, w
}

func (c *core) forget(token uint64) {
	c.mu.Lock()
	delete(c.waits, token)
	c.mu.Unlock()
}

// stop fails every waiting call.
func (c *core) stop() {
	c.do(func(n *chainsm.Node) { n.Stop() })
}

// report carries a report to etcd, or to the member record.
func (c *core) report(r chainsm.Report) {
	switch r.Kind {
	case chainsm.RepEpoch:
		c.adopted.Store(r.Epoch)
		c.adoptMu.Lock()
		close(c.adoptCh)
		c.adoptCh = make(chan struct{})
		c.adoptMu.Unlock()
	case chainsm.RepReady:
		c.s.reports.put(readyKeyOf(c.s, r.Part), r.Ver)
	case chainsm.RepSynced:
		c.s.reports.put(syncedKeyOf(c.s, r.Part), r.Ver)
	}
}
