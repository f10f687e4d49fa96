package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvserver/chainsm"
)

// Scripted reproductions of the bugs of issue 12 (SIMULATION.md §7), named
// by testdata/canaries.txt: each is one small cluster, the random fault plan
// off, and the few faults and operations that lead to the bug, timed by
// what the cluster does (Sim.when) rather than by the clock where it
// matters. The random workload runs throughout.
func init() {
	scenarios["removed-member-leased"] = scenarioRemovedMemberLeased
	scenarios["retry-in-holdback"] = scenarioRetryInHoldback
	scenarios["sole-member-cut-off"] = scenarioSoleMemberCutOff
	scenarios["unsynced-tail-left-alone"] = scenarioUnsyncedTailLeftAlone
	scenarios["head-restart-after-forward"] = scenarioHeadRestartAfterForward
	scenarios["synced-report-after-failover"] = scenarioSyncedReportAfterFailover
	scenarios["member-skips-reorder"] = scenarioMemberSkipsReorder
	scenarios["promoted-tail-missed-commit"] = scenarioPromotedTailMissedCommit
	scenarios["retry-after-expiry"] = scenarioRetryAfterExpiry
}

func ms(n int64) int64 { return n * int64(time.Millisecond) }

// ringNow is the ring in etcd.
func (s *Sim) ringNow() *ringmeta.Ring {
	kv, ok := s.etcd.Get(ringKey)
	if !ok {
		return nil
	}
	r, err := ringmeta.Unmarshal(kv.Value)
	if err != nil {
		panic(err)
	}
	return r
}

// chainNow is partition p's chain in etcd.
func (s *Sim) chainNow(p int) ringmeta.Chain { return s.ringNow().Chains[p] }

// scriptClient is a client the scenario drives; it runs no random workload.
func (s *Sim) scriptClient(name string) *client {
	return &client{s: s, name: name, rng: s.stream(name), logical: s.newLogical(), cid: s.rootRng.Uint64(), active: true}
}

// put writes key=value through c, then calls done with the outcome.
func (c *client) put(key string, done func(framework.Op)) {
	c.begin(opPut, key, 0, false, done)
}

// incr adds 1 to key through c, then calls done with the outcome.
func (c *client) incr(key string, done func(framework.Op)) {
	c.seq++
	c.op = &pendingOp{kind: opIncr, key: key, start: c.s.now, deadline: c.s.now + c.s.opt.OpDeadline,
		id: chainsm.ReqID{Client: c.cid, Seq: c.seq}, cas: casReq{delta: 1}, onDone: done}
	c.try()
}

// readLoop reads key through c (any member, c.prefer first) one read after
// another, every gap, until stop.
func (c *client) readLoop(key string, gap, stop int64) {
	if c.s.now >= stop {
		return
	}
	c.begin(opGet, key, 0, true, func(framework.Op) {
		c.s.after(gap, func() { c.readLoop(key, gap, stop) })
	})
}

// adopted reports whether server id follows a ring at least as new as
// epoch.
func (s *Sim) adopted(id string, epoch uint64) bool {
	h := s.byID[id]
	return h.up && h.node.Epoch() >= epoch
}

// removed-member-leased (bug 6): the middle X of [A,X,C] is cut from etcd
// and the ECS (not from A, C or clients) for 4 s; the ECS drops it when its
// membership lease runs out and [A,C] commits writes after the holdback.
// Readers keep reading X, their nearest replica. X's read lease comes from
// A, which grants only at the epoch it follows: once A adopts [A,C] X's
// lease runs out and the readers are sent to the new chain. A grant paired
// with a stale epoch (simcanary_leaseorder) keeps X serving the old values.
func scenarioRemovedMemberLeased() Options {
	return Options{Partitions: 1, Servers: 4, Keys: 4, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			x := s.chainNow(0).Members[1]
			s.cutFor("control-plane", ms(2000), ms(6000), []string{x}, s.controlPlane())
			for k := range 4 {
				r := s.scriptClient(fmt.Sprintf("reader%d", k))
				r.prefer = x
				s.at(ms(1000), func() { r.readLoop(fmt.Sprintf("k%d", k), ms(5), ms(7000)) })
			}
		}}
}

// retry-in-holdback (bug 4): [A,X,C]; x0 is written at 1 s. At 2 s X and
// C are cut from etcd and the ECS (not from A or clients); the ECS makes A
// sole member. X still holds a read lease from A until a little after A
// adopts [A]; A's holdback outlasts it. Right after A adopts, a client
// writes x0 again: the write commits at once (A is alone) but its answer
// waits for the holdback, so the client times out (150 ms) and retries.
// Once it has its answer a reader whose nearest replica is X reads x0.
// The retry's answer must wait for the holdback as the first attempt's
// does; answered at once (simcanary_dupholdback) the reader gets the old
// value from X after the write was acknowledged.
func scenarioRetryInHoldback() Options {
	return Options{Partitions: 1, Servers: 3, NoFaults: true, AttemptTimeout: ms(150), FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			a, x := ch.Members[0], ch.Members[1]
			w, r := s.scriptClient("writer"), s.scriptClient("reader")
			r.prefer = x
			s.at(ms(1000), func() {
				w.put("x0", func(framework.Op) { r.begin(opGet, "x0", 0, true, func(framework.Op) {}) })
			})
			s.cutFor("control-plane", ms(2000), ms(6000), ch.Members[1:], s.controlPlane())
			s.when(func() bool {
				ring := s.ringNow()
				return slices.Equal(ring.Chains[0].Members, []string{a}) && s.adopted(a, ring.Epoch)
			}, func() {
				w.put("x0", func(framework.Op) { r.readLoop("x0", ms(2), s.now+ms(300)) })
			})
		}}
}

// sole-member-cut-off (bug 1): R=2, [A,B]. B crashes at 1 s (it stays down
// until the faults heal); the ECS makes A sole member, then C its learner.
// A's link to C is slow for a second, so C catches up only once A's
// holdback is over and clients use A again. The moment C reports ready, A
// is cut from etcd and the ECS (not from C or clients): C is promoted
// ([A,C], C marked unsynced) but A never sees that ring. When A's
// membership runs out the ECS must wait: C may lack writes A acknowledged.
// And A, a sole member without fresh etcd contact, stops answering. The
// old logic (simcanary_twoheads) publishes [C] while A goes on answering
// the clients that still route to it: two heads, and once A learns of it,
// its acknowledged writes are gone.
func scenarioSoleMemberCutOff() Options {
	return Options{Partitions: 1, Servers: 3, Replicas: 2, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 14 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			a, b := ch.Members[0], ch.Members[1]
			s.at(ms(1000), s.byID[b].crash)
			slowFeed(s, 0)
			cutWhenReady(s, 0, []string{a})
		}}
}

// slowFeed clogs the link from partition p's tail to its learner for a
// second once the ECS names one.
func slowFeed(s *Sim, p int) {
	s.when(func() bool { return s.chainNow(p).Learner != "" }, func() {
		c := s.chainNow(p)
		s.net.clog[[2]string{c.Tail(), c.Learner}] = s.now + ms(1000)
	})
}

// cutWhenReady cuts ids from etcd and the ECSes until the faults heal, the
// moment partition p's learner reports ready.
func cutWhenReady(s *Sim, p int, ids []string) {
	s.when(func() bool {
		c := s.chainNow(p)
		if c.Learner == "" {
			return false
		}
		_, ok := s.etcd.Get(readyKey(c.Learner, p))
		return ok
	}, func() {
		s.count("script-cut")
		s.cutFor("control-plane", s.now, int64(s.opt.FaultTime), ids, s.controlPlane())
	})
}

// unsynced-tail-left-alone (bug 3): R=3, [A,B,C] and a spare D. C crashes
// at 1 s (down until the faults heal); the ECS makes D the learner of
// [A,B]. B's link to D is slow for a second, so D catches up once the
// holdback of [A,B] is over. The moment D reports ready, A and B are cut
// from etcd and the ECS (not from each other, D or clients): D is promoted
// ([A,B,D], D marked unsynced) but A and B never see it, and commit writes
// D never gets until their leases run out. When their membership runs out
// the ECS must not make D, which lacks those acknowledged writes, head;
// ignoring the marks (simcanary_unsyncedhead) publishes [D].
func scenarioUnsyncedTailLeftAlone() Options {
	return Options{Partitions: 1, Servers: 4, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 14 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			s.at(ms(1000), s.byID[ch.Members[2]].crash)
			slowFeed(s, 0)
			cutWhenReady(s, 0, ch.Members[:2])
		}}
}

// head-restart-after-forward (overlapped durability): [A,B,C] under the
// clients' writes, A's disk slow (syncs take ~300 ms), so A forwards many
// entries that B and C sync long before A does. At 2 s A crashes keeping
// only what it synced, and starts again at once while every ECS is paused
// for 3 s: nobody strips the restarted A, which finds itself head of the
// same chain version. Its successors hold entries it lost. A must get them
// back from B before it sequences (probe.go); sequencing from its own
// applied seq (simcanary_noprobe) reuses seqs B and C hold for other
// writes, and what A then acknowledges is not what the chain keeps.
func scenarioHeadRestartAfterForward() Options {
	return Options{Partitions: 1, Servers: 3, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			a := s.byID[s.chainNow(0).Members[0]]
			s.at(ms(1000), func() { a.syncMean = ms(300) })
			s.at(ms(2000), func() {
				s.count("script-restart")
				for _, e := range s.ecses {
					e.pausedTill = max(e.pausedTill, s.now+ms(3000))
				}
				a.crashKeep(0)
				a.syncMean = a.baseSyncMean
				a.start()
			})
		}}
}

// synced-report-after-failover: R=3, [A,B,C] and a spare D. C crashes at
// 1 s (down until the faults heal); the ECS makes D the learner of [A,B],
// then promotes it: [A,B,D], D marked unsynced. The moment D has queued
// its synced report, D is cut from etcd and the ECS (not from its peers)
// and A restarts: the ECS fails A over ([B,D], D still marked: no report
// in etcd yet). Then every ECS crashes (a new leader knows no earlier
// incarnation) and D's cut ends: D writes its report, adopts [B,D], and
// restarts at once, keeping what it wrote. The restarted ECS takes the
// report of D's earlier incarnation for stale and deletes it. D must report
// again at [B,D]: the mark outlived its report. Owing the report at one
// chain version only (simcanary_reportonce), D never does, and the
// partition stays frozen at two members.
func scenarioSyncedReportAfterFailover() Options {
	return Options{Partitions: 1, Servers: 4, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 14 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			a := s.byID[ch.Members[0]]
			s.at(ms(1000), s.byID[ch.Members[2]].crash)
			var d *host
			s.when(func() bool {
				for _, h := range s.hosts {
					if _, ok := h.reports[syncedKey(h.id, 0)]; ok {
						d = h
						return true
					}
				}
				return false
			}, func() {
				s.count("script-cut")
				s.net.setCut([]string{d.id}, s.controlPlane(), true)
				a.crashKeep(0)
				a.start()
				s.when(func() bool { return !slices.Contains(s.chainNow(0).Members, a.id) }, func() {
					epoch := s.ringNow().Epoch
					for _, e := range s.ecses {
						e.crash()
						s.after(ms(1500), e.start)
					}
					s.net.setCut([]string{d.id}, s.controlPlane(), false)
					s.when(func() bool { return s.adopted(d.id, epoch) }, func() {
						s.count("script-restart")
						d.crashKeep(len(d.disk.pending))
						d.start()
					})
				})
			})
		}}
}

// member-skips-reorder (narrow probes): [A,B,C] under the clients'
// writes. At 1 s B is cut from etcd and the ECS (not from its peers or
// clients) for 700 ms, well within its membership lease, and the ECS
// rotates the chain to [C,A,B]. B never sees that ring: C sequences
// writes that C and A apply and B drops. Once C and A follow it, A is cut
// off from everyone and the ECS rotates the chain back to [A,B,C]; when
// A's membership runs out it fails A over: [B,C]. B adopts those rings
// when its cut ends, from the [A,B,C] it followed: C stayed below it in
// every order B saw, yet C holds writes B never had. B must probe C before
// it sequences; probing only when a member below came before it in the
// chain it followed (simcanary_narrowprobe) reuses C's seqs for other
// writes, acknowledged by C, while C's tail reads return its own.
func scenarioMemberSkipsReorder() Options {
	return Options{Partitions: 1, Servers: 3, Keys: 4, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			a, b, c := ch.Members[0], ch.Members[1], ch.Members[2]
			s.cutFor("control-plane", ms(1000), ms(1700), []string{b}, s.controlPlane())
			s.at(ms(1000), func() { s.reorder = reorderAsk{ok: true, part: 0, rot: 2} })
			s.when(func() bool {
				r := s.ringNow()
				return slices.Equal(r.Chains[0].Members, []string{c, a, b}) && s.adopted(c, r.Epoch) && s.adopted(a, r.Epoch)
			}, func() {
				s.after(ms(150), func() {
					s.count("script-isolate")
					var rest []string
					for _, id := range s.allEndpoints() {
						if id != a {
							rest = append(rest, id)
						}
					}
					s.cutFor("isolate", s.now, int64(s.opt.FaultTime), []string{a}, rest)
					s.reorder = reorderAsk{ok: true, part: 0, rot: 1}
				})
			})
		}}
}

// promoted-tail-missed-commit (prior reads): [A,B,C] and a spare D under
// the clients' writes. C crashes at 1 s; the ECS makes D the learner of
// [A,B] and, once D is ready, its tail. From the moment D is ready B's feed
// to D is lost, and every ECS pauses for 1.5 s, so D is promoted lacking
// writes B committed and A acknowledged; and for 600 ms from the moment the ring names D a member,
// A's updates to B are lost, and with them the watermark that would let D
// commit those writes. D gets them from B in its hello: committed, though
// D cannot tell them from writes in flight. A read of their keys at D must
// wait for their commit; answering with the record before them, as a tail
// may for a write in flight (simcanary_priorfloor), returns values older
// than acknowledged writes. Readers read every key at D throughout.
func scenarioPromotedTailMissedCommit() Options {
	return Options{Partitions: 1, Servers: 4, Keys: 4, NoFaults: true, FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			ch := s.chainNow(0)
			a, b := ch.Members[0], ch.Members[1]
			s.at(ms(1000), s.byID[ch.Members[2]].crash)
			var d string
			s.when(func() bool {
				c := s.chainNow(0)
				if c.Learner == "" {
					return false
				}
				_, ok := s.etcd.Get(readyKey(c.Learner, 0))
				d = c.Learner
				return ok
			}, func() {
				s.count("script-cut")
				feed := func(m chainsm.Msg) bool { return m.From == b && m.To == d && m.Learner }
				s.dropMsg = feed
				for _, e := range s.ecses {
					e.pausedTill = max(e.pausedTill, s.now+ms(1500)) // past the holdback: writes D lacks
				}
				for k := range 4 {
					r := s.scriptClient(fmt.Sprintf("reader%d", k))
					r.prefer = d
					r.readLoop(fmt.Sprintf("k%d", k), ms(5), ms(8000))
				}
				s.when(func() bool { return slices.Contains(s.chainNow(0).Members, d) }, func() {
					s.dropMsg = func(m chainsm.Msg) bool {
						return feed(m) || m.From == a && m.To == b && m.Kind == chainsm.MsgUpdate
					}
					s.after(ms(600), func() { s.dropMsg = nil })
				})
			})
		}}
}

// retry-after-expiry: the servers remember a request id for 1.5 s, and an
// operation's deadline is 20 s. At 1 s a client increments x; once the
// head has applied it, the client is cut from every server for 4 s, so
// the answer is lost and every retry fails. The client stops retrying the
// write after WriteRetryWindow (600 ms): its outcome is unknown. Retrying
// until the deadline (simcanary_retrywindow), it reaches the head once the
// cut heals, long after the id was forgotten, and the increment applies
// twice: a read after shows it.
func scenarioRetryAfterExpiry() Options {
	return Options{Partitions: 1, Servers: 3, NoFaults: true, OpDeadline: int64(20 * time.Second),
		DedupRetention: 1500 * time.Millisecond, WriteRetryWindow: 600 * time.Millisecond,
		FaultTime: 8 * time.Second, LiveTime: 12 * time.Second,
		Script: func(s *Sim) {
			head := s.chainNow(0).Head()
			var servers []string
			for _, h := range s.hosts {
				servers = append(servers, h.id)
			}
			w, r := s.scriptClient("writer"), s.scriptClient("reader")
			s.at(ms(1000), func() {
				w.incr("x", func(framework.Op) {})
				id := w.op.id
				s.when(func() bool {
					_, ok := s.byID[head].disk.dedupSeq(0, id)
					return ok
				}, func() {
					s.count("script-cut")
					s.cutFor("client", s.now, s.now+ms(4000), []string{w.name}, servers)
				})
			})
			s.at(ms(7000), func() { r.begin(opGet, "x", 0, false, func(framework.Op) {}) })
		}}
}
