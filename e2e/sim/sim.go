// Package sim is a deterministic simulator of an ecskv cluster: the real
// chain state machines of several servers (kvserver/chainsm) and an ECS's
// chain decisions run in one goroutine against an in-memory etcd
// (etcdmodel), a network that delays, drops, duplicates, reorders and
// partitions messages, disks that lose unsynced writes on a power cut, and
// clocks that skew and drift. A seed fixes everything: the same seed replays
// the same run. Client histories are checked with porcupine; replicas must
// converge once the faults heal, and the cluster must serve again.
package sim

import (
	"container/heap"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/e2e/sim/etcdmodel"
	"github.com/ecskv/ecskv/kvserver/chainsm"
)

// etcd key layout of the simulated cluster (one cluster, no prefix).
const (
	ringKey      = "ring"
	ctlKey       = "ctl"
	leaderPrefix = "leader"
)

func memberKey(id string) string        { return "servers/" + id }
func readyKey(id string, p int) string  { return fmt.Sprintf("ready/%s/%d", id, p) }
func syncedKey(id string, p int) string { return fmt.Sprintf("synced/%s/%d", id, p) }

// Options shape one run. Zero fields take defaults.
type Options struct {
	Servers, ECSes, Clients int
	Partitions, Replicas    int
	Keys                    int
	// TTLKeys is how many keys take puts with a TTL of 50-500 ms (checked
	// by the expiry checker, not porcupine); default 4, negative for none.
	TTLKeys int
	// Counters is how many integer keys take increments and
	// compare-and-swaps besides reads; default 3, negative for none.
	Counters int
	// FaultTime is how long faults are injected; LiveTime how long the
	// healed cluster runs after that, the last LiveCheck of it with every
	// operation required to succeed.
	FaultTime, LiveTime, LiveCheck time.Duration
	Lease                          int64 // ns
	MemberTTL                      time.Duration
	OpDeadline, AttemptTimeout     int64
	// NoFaults runs the workload on a healthy cluster.
	NoFaults bool
	// Trace, when set, receives a line per peer message and ring.
	Trace io.Writer
	// OutDir receives porcupine's visualisation of a failed history.
	OutDir string
	// Layout is the first ring's placement: LayoutNeighbors (the ECS's),
	// LayoutScattered (hashring.WithTokens: every server's chains reach
	// every other, so more orders of messages), or, when empty, either,
	// drawn from the seed; scripted scenarios default to scattered, the
	// layout their roles were written for.
	Layout string
	// DedupRetention is how long the chain nodes remember request ids
	// (chainsm.Config.DedupRetentionMs): short, so runs expire dedup
	// records and crash with tables partly expired, yet longer than a
	// client retries one (OpDeadline) plus any clock's skew and drift.
	DedupRetention time.Duration
	// WriteRetryWindow bounds how long a client retries a write once an
	// attempt may have been sequenced, as kvclient.WriteRetryWindow does;
	// default half of DedupRetention.
	WriteRetryWindow time.Duration
	// Script, when set, runs once the cluster is set up, before the first
	// event: a scripted scenario schedules its faults and operations with
	// Sim.at and Sim.when (tests; the random fault plan still runs unless
	// NoFaults).
	Script func(*Sim)
}

// The first ring's layouts (Options.Layout).
const (
	LayoutNeighbors = "neighbors"
	LayoutScattered = "scattered"
)

// layout returns the run's first layout, drawn from its own stream when
// the options leave it open.
func (s *Sim) layout() string {
	switch {
	case s.opt.Layout != "":
		return s.opt.Layout
	case s.opt.Script != nil:
		return LayoutScattered
	case s.stream("layout").IntN(2) == 0:
		return LayoutScattered
	}
	return LayoutNeighbors
}

func (o *Options) defaults() {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&o.Servers, 5)
	set(&o.ECSes, 2)
	set(&o.Clients, 6)
	set(&o.Partitions, 8)
	set(&o.Replicas, 3)
	set(&o.Keys, 16)
	set(&o.TTLKeys, 4)
	set(&o.Counters, 3)
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setD(&o.FaultTime, 20*time.Second)
	setD(&o.LiveTime, 20*time.Second)
	setD(&o.LiveCheck, 6*time.Second)
	setD(&o.MemberTTL, time.Second)
	if o.Lease == 0 {
		o.Lease = int64(400 * time.Millisecond)
	}
	if o.OpDeadline == 0 {
		o.OpDeadline = int64(3 * time.Second)
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = int64(400 * time.Millisecond)
	}
	setD(&o.DedupRetention, 8*time.Second)
	setD(&o.WriteRetryWindow, o.DedupRetention/2)
}

// Sim is one run.
type Sim struct {
	seed    uint64
	opt     Options
	now     int64
	q       eventQueue
	seq     uint64
	sched   *rand.Rand
	faults  *rand.Rand
	diskRng *rand.Rand
	rootRng *rand.Rand
	net     *network
	dropMsg func(chainsm.Msg) bool // scenarios: chain messages lost on purpose
	etcd    *etcdmodel.Store
	hosts   []*host
	byID    map[string]*host
	ecses   []*ecsHost
	clients []*client
	hist    []framework.Op
	nextLog int
	// Result accumulators.
	failures []string
	counters map[string]int
	rings    map[uint64]string // epoch -> leader that published it
	plan     []string
	events   int
	watches  []watch
	// ledger: the request acknowledged at each (partition, seq).
	ledger map[partSeq]chainsm.ReqID
	// reorder is the reorder the fault plan asks of the ECS next.
	reorder reorderAsk
	hash    hash.Hash64 // over every message and ring: equal for equal runs
}

// Result is the outcome of a run.
type Result struct {
	Seed     uint64
	Failures []string
	Counters map[string]int
	Plan     []string
	Ops      int
	Events   int
	History  []framework.Op
	// TraceHash digests the run's messages and rings: one seed, one hash.
	TraceHash uint64
}

// takeReorder returns (and forgets) the reorder the fault plan asked for.
func (s *Sim) takeReorder() reorderAsk {
	a := s.reorder
	s.reorder = reorderAsk{}
	return a
}

// planReorders asks the ECS, every few seconds of the fault window, to
// rotate a random chain (from a stream of its own, so the fault plan of a
// seed does not change with it).
func (s *Sim) planReorders(end int64) {
	r := s.stream("reorder")
	if r.IntN(2) == 0 {
		return
	}
	for t := int64(time.Second); t < end; t += expDur(r, int64(2*time.Second)) + int64(200*time.Millisecond) {
		a := reorderAsk{ok: true, part: r.IntN(s.opt.Partitions), rot: 1 + r.IntN(2)}
		s.at(t, func() { s.count("reorder-asked"); s.reorder = a })
	}
}

// Run simulates one seed.
func Run(seed uint64, opt Options) Result {
	opt.defaults()
	s := &Sim{seed: seed, opt: opt, counters: map[string]int{}, hash: fnv.New64a(), rings: map[uint64]string{}, byID: map[string]*host{},
		ledger: map[partSeq]chainsm.ReqID{}}
	s.sched, s.faults, s.diskRng, s.rootRng = s.stream("sched"), s.stream("faults"), s.stream("disk"), s.stream("root")
	s.net = newNetwork(s)
	s.etcd = etcdmodel.New()
	s.setup()
	defer func() {
		for _, h := range s.hosts {
			h.disk.close()
		}
	}()
	faultEnd := int64(opt.FaultTime)
	end := faultEnd + int64(opt.LiveTime)
	if !opt.NoFaults {
		s.planFaults(faultEnd)
		s.planReorders(faultEnd)
	}
	s.at(faultEnd, s.heal)
	if opt.Script != nil {
		opt.Script(s)
	}
	for _, c := range s.clients {
		c.active = true
		s.after(expDur(c.rng, 10_000_000), func() { c.run(end) })
	}
	s.at(end+int64(opt.OpDeadline)+int64(time.Second), s.finalSweep)
	s.loop(end + int64(opt.OpDeadline) + int64(30*time.Second))
	s.checkHistory(faultEnd + int64(opt.LiveTime-opt.LiveCheck))
	return Result{Seed: seed, Failures: s.failures, Counters: s.counters, Plan: s.plan, Ops: len(s.hist), Events: s.events, History: s.hist,
		TraceHash: s.hash.Sum64()}
}

// loop runs events until the queue is empty or until.
func (s *Sim) loop(until int64) {
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(*event)
		if e.at > until {
			return
		}
		s.now = e.at
		s.events++
		e.fn()
		s.fireWatches()
		if len(s.failures) > 20 {
			return
		}
	}
}

type partSeq struct {
	part int
	seq  uint64
}

// acked records in the ledger that server id answered request req, which it
// holds at (part, seq): one acknowledged write per seq (DESIGN §4). (A
// removed member may still apply writes at seqs the new chain acknowledged
// until it learns of its removal: it is fenced and drops them then, so
// applies are not checked against the ledger.)
func (s *Sim) acked(id string, part int, seq uint64, req chainsm.ReqID) {
	k := partSeq{part, seq}
	if prev, ok := s.ledger[k]; ok && prev != req {
		s.fail("%s partition %d: seq %d acknowledged for request %v, earlier for %v", id, part, seq, req, prev)
		return
	}
	s.ledger[k] = req
}

// watch is a scenario's condition and what to do once it holds.
type watch struct {
	cond func() bool
	fn   func()
}

// when runs fn after the first event after which cond holds (checked after
// every event; at most once).
func (s *Sim) when(cond func() bool, fn func()) {
	s.watches = append(s.watches, watch{cond, fn})
}

func (s *Sim) fireWatches() {
	for i := 0; i < len(s.watches); {
		w := s.watches[i]
		if !w.cond() {
			i++
			continue
		}
		s.watches = slices.Delete(s.watches, i, i+1)
		w.fn()
	}
}

// setup creates etcd's first ring, the servers, the ECSes and the clients.
func (s *Sim) setup() {
	o := s.opt
	var servers []hashring.Server
	r := &ringmeta.Ring{Epoch: 1, Partitions: o.Partitions, Replicas: o.Replicas,
		Limits: ringmeta.Limits{MaxKeyBytes: 1024, MaxValueBytes: 1 << 20}}
	clk := s.stream("clock")
	for i := 1; i <= o.Servers; i++ {
		id := fmt.Sprintf("s%d", i)
		servers = append(servers, hashring.Server{ID: id})
		r.Servers = append(r.Servers, ringmeta.Server{ID: id, Addr: id, State: ringmeta.StateActive})
		d, err := newDisk(id)
		if err != nil {
			panic(err)
		}
		h := &host{s: s, id: id, disk: d, clk: s.randomClock(clk), baseSyncMean: int64(clk.IntN(3)) * 2_000_000}
		h.syncMean = h.baseSyncMean
		s.hosts = append(s.hosts, h)
		s.byID[id] = h
	}
	var layout []hashring.Option
	l := s.layout()
	s.counters["layout-"+l]++
	if l == LayoutScattered {
		layout = append(layout, hashring.WithTokens(0))
	}
	chains, err := hashring.Initial(servers, o.Partitions, o.Replicas, layout...)
	if err != nil {
		panic(err)
	}
	for _, m := range chains {
		r.Chains = append(r.Chains, ringmeta.Chain{Members: m, Version: 1})
	}
	b, _ := r.Marshal()
	if _, err := s.etcd.Put(0, ringKey, b, 0); err != nil {
		panic(err)
	}
	s.rings[1] = "setup"
	for _, h := range s.hosts {
		h.start()
	}
	for i := 1; i <= o.ECSes; i++ {
		e := &ecsHost{s: s, id: fmt.Sprintf("e%d", i), clk: s.randomClock(clk)}
		s.ecses = append(s.ecses, e)
		e.start()
	}
	for i := 0; i < o.Clients; i++ {
		c := &client{s: s, name: fmt.Sprintf("c%d", i), rng: s.stream(fmt.Sprintf("client/%d", i)), logical: s.newLogical()}
		c.cid = s.rootRng.Uint64()
		for k := 0; k < o.Keys; k++ {
			c.keys = append(c.keys, fmt.Sprintf("k%d", k))
		}
		for k := 0; k < o.TTLKeys; k++ {
			c.ttlKeys = append(c.ttlKeys, ttlKey(k))
		}
		for k := 0; k < o.Counters; k++ {
			c.counters = append(c.counters, fmt.Sprintf("n%d", k))
		}
		s.clients = append(s.clients, c)
	}
}

// randomClock gives a node a skewed wall clock (within ±maxSkewMs, so two
// servers differ by at most 100 ms) and a drift well within ε.
func (s *Sim) randomClock(r *rand.Rand) clock {
	const skewNs = maxSkewMs * 1_000_000
	return clock{monoOff: r.Int64N(1 << 40), driftPPM: r.Int64N(40_001) - 20_000, wallOff: r.Int64N(2*skewNs+1) - skewNs}
}

func (s *Sim) newLogical() int { s.nextLog++; return s.nextLog }

func (s *Sim) record(op framework.Op) { s.hist = append(s.hist, op) }

func (s *Sim) count(name string) { s.counters[name]++ }

func (s *Sim) fail(format string, args ...any) {
	msg := fmt.Sprintf("t=%s: ", time.Duration(s.now)) + fmt.Sprintf(format, args...)
	if !slices.Contains(s.failures, msg) {
		s.failures = append(s.failures, msg)
	}
}

// sendMsg delivers a peer message to a running host.
func (s *Sim) sendMsg(m chainsm.Msg) {
	h, ok := s.byID[m.To]
	if !ok {
		return
	}
	s.count("msg-" + m.Kind.String())
	if s.dropMsg != nil && s.dropMsg(m) {
		s.count("script-drop")
		return
	}
	fmt.Fprintf(s.hash, "%d %s>%s %d %d %d %d %d\n", s.now, m.From, m.To, m.Kind, m.Part, m.Ver, m.Seq, len(m.Entries))
	if s.opt.Trace != nil && m.Kind != chainsm.MsgLeaseReq && m.Kind != chainsm.MsgLeaseResp {
		var first, last uint64
		if len(m.Entries) > 0 {
			first, last = m.Entries[0].Seq, m.Entries[len(m.Entries)-1].Seq
		}
		fmt.Fprintf(s.opt.Trace, "%s %s->%s %s p%d v%d seq=%d entries=%d (%d..%d) learner=%v\n", time.Duration(s.now), m.From, m.To, m.Kind, m.Part, m.Ver, m.Seq, len(m.Entries), first, last, m.Learner)
	}
	s.net.send(m.From, m.To, func() {
		gen := h.gen
		var run func()
		run = func() {
			if h.alive(gen, run) {
				h.onMsg(m)
			}
		}
		run()
	})
}

// request sends a client call to server to.
func (s *Sim) request(c *client, to string, rq request) {
	h, ok := s.byID[to]
	if !ok {
		return
	}
	s.net.send(c.name, to, func() {
		gen := h.gen
		var run func()
		run = func() {
			if h.alive(gen, run) {
				h.onRequest(c, rq)
			}
		}
		run()
	})
}

func (s *Sim) reply(from string, c *client, rep reply) {
	s.net.send(from, c.name, func() { c.onReply(rep) })
}

// etcdCall runs op at etcd when the request arrives and cb at the caller
// when the answer does, both only over working links; gen is the caller's
// incarnation (0: a client, always alive).
func (s *Sim) etcdCall(from string, op func(etcdmodel.Time) any, gen int, cb func(any)) {
	s.net.send(from, "etcd", func() {
		s.etcd.Advance(etcdmodel.Time(s.now))
		v := op(etcdmodel.Time(s.now))
		s.net.send("etcd", from, func() {
			if s.callerAlive(from, gen) {
				cb(v)
			}
		})
	})
}

func (s *Sim) callerAlive(id string, gen int) bool {
	if h, ok := s.byID[id]; ok {
		return h.up && h.gen == gen && h.pausedTill <= s.now
	}
	for _, e := range s.ecses {
		if e.id == id {
			return e.up && e.gen == gen && e.pausedTill <= s.now
		}
	}
	return true
}

// ringPublished checks that every epoch is published once.
func (s *Sim) ringPublished(r *ringmeta.Ring, by string) {
	if prev, ok := s.rings[r.Epoch]; ok {
		s.fail("epoch %d published twice (%s, %s)", r.Epoch, prev, by)
	}
	s.rings[r.Epoch] = by
	fmt.Fprintf(s.hash, "%d ring %d %s\n", s.now, r.Epoch, by)
	if s.opt.Trace != nil {
		for p, ch := range r.Chains {
			fmt.Fprintf(s.opt.Trace, "%s ring %d by %s: p%d %v learner=%q v%d\n", time.Duration(s.now), r.Epoch, by, p, ch.Members, ch.Learner, ch.Version)
		}
	}
	s.count("ring-published")
}

func sortedMap(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}
