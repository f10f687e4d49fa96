package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/sim/etcdmodel"
	"github.com/ecskv/ecskv/ecs/core"
)

// ecsHost is one ECS process: it campaigns for leadership in etcd and, as
// leader, turns membership, ready and synced reports into the next ring,
// published with a compare-and-swap guarded by its leader key (DESIGN §5).
type ecsHost struct {
	s          *Sim
	id         string
	clk        clock
	up         bool
	gen        int
	pausedTill int64
	lease      etcdmodel.LeaseID
	key        string
	createRev  int64
	leading    bool
	since      int64           // true time it found itself leader
	seen       map[string]bool // servers seen registered while leading
	// inc is the incarnation of each server last seen leading; a server
	// seen restarted leaves its chains (as the ECS's failover does) unless
	// a chain needs it.
	inc       map[string]string
	restarted map[string]bool
}

// ctlState is what the ECS keeps in etcd beside the ring, in the same txn.
type ctlState struct {
	// Unsynced lists, per partition, members that may lack writes
	// committed before they joined, with the chain version they joined at.
	Unsynced map[int][]core.Mark `json:"unsynced,omitempty"`
}

func (e *ecsHost) alive(gen int, fn func()) bool {
	if !e.up || e.gen != gen {
		return false
	}
	if e.pausedTill > e.s.now {
		e.s.at(e.pausedTill, fn)
		return false
	}
	return true
}

func (e *ecsHost) start() {
	e.gen++
	e.up, e.lease, e.leading, e.seen = true, 0, false, map[string]bool{}
	e.inc, e.restarted = map[string]string{}, map[string]bool{}
	e.loop()
}

func (e *ecsHost) crash() {
	e.up = false
	e.gen++
}

func (e *ecsHost) loop() {
	gen := e.gen
	var run func()
	run = func() {
		if e.alive(gen, run) {
			e.step()
			e.loop()
		}
	}
	e.s.after(e.clk.trueSpan(50_000_000), run)
}

// step campaigns, or reads the cluster and publishes the next ring.
func (e *ecsHost) step() {
	if e.lease == 0 {
		e.campaign()
		return
	}
	lease, key := e.lease, e.key
	e.s.etcdCall(e.id, func(now etcdmodel.Time) any {
		if e.s.etcd.KeepAlive(now, lease) != nil {
			return nil
		}
		l, ok := e.s.etcd.Leader(leaderPrefix)
		if !ok || l.Key != key {
			return view{}
		}
		return readView(e.s.etcd)
	}, e.gen, func(v any) {
		if v == nil {
			e.lease, e.leading = 0, false // lost the lease: campaign again
			return
		}
		vw := v.(view)
		if vw.ring == nil {
			e.leading = false
			return
		}
		if !e.leading {
			e.leading, e.since, e.seen = true, e.s.now, map[string]bool{}
			e.inc, e.restarted = map[string]string{}, map[string]bool{}
			e.s.count("ecs-leader-change")
		}
		e.reconcile(vw)
	})
}

func (e *ecsHost) campaign() {
	e.s.etcdCall(e.id, func(now etcdmodel.Time) any {
		id := e.s.etcd.Grant(now, e.s.opt.MemberTTL)
		k, rev, err := e.s.etcd.Campaign(now, leaderPrefix, []byte(e.id), id)
		if err != nil {
			return nil
		}
		return [3]any{id, k, rev}
	}, e.gen, func(v any) {
		if v != nil {
			a := v.([3]any)
			e.lease, e.key, e.createRev = a[0].(etcdmodel.LeaseID), a[1].(string), a[2].(int64)
		}
	})
}

// view is what the leader reads in one go.
type view struct {
	ring    *ringmeta.Ring
	ringRev int64
	state   ctlState
	live    map[string]bool
	inc     map[string]string    // incarnation of each live server
	ready   map[[2]string]uint64 // (id, partition) -> chain version, of the live incarnation
	synced  map[[2]string]uint64
}

func readView(st *etcdmodel.Store) view {
	kv, ok := st.Get(ringKey)
	if !ok {
		return view{}
	}
	r, err := ringmeta.Unmarshal(kv.Value)
	if err != nil {
		return view{}
	}
	vw := view{ring: r, ringRev: kv.ModRev, live: map[string]bool{}, inc: map[string]string{}, ready: map[[2]string]uint64{}, synced: map[[2]string]uint64{}}
	if c, ok := st.Get(ctlKey); ok {
		_ = json.Unmarshal(c.Value, &vw.state)
	}
	for _, m := range st.Range("servers/") {
		id := strings.TrimPrefix(m.Key, "servers/")
		vw.live[id], vw.inc[id] = true, string(m.Value)
	}
	for pre, dst := range map[string]map[[2]string]uint64{"ready/": vw.ready, "synced/": vw.synced} {
		for _, m := range st.Range(pre) {
			parts := strings.Split(strings.TrimPrefix(m.Key, pre), "/")
			ver, inc, _ := strings.Cut(string(m.Value), "/")
			v, _ := strconv.ParseUint(ver, 10, 64)
			if inc != vw.inc[parts[0]] {
				v = 0 // an earlier incarnation's report: it restarted since
			}
			dst[[2]string{parts[0], parts[1]}] = v
		}
	}
	return vw
}

// reconcile decides the next ring and publishes it.
func (e *ecsHost) reconcile(vw view) {
	for _, id := range slices.Sorted(maps.Keys(vw.live)) {
		e.seen[id] = true
		if old, ok := e.inc[id]; ok && old != vw.inc[id] {
			e.restarted[id] = true
		}
		e.inc[id] = vw.inc[id]
	}
	grace := e.s.now-e.since >= int64(e.s.opt.MemberTTL)
	gone := func(id string) bool { return !vw.live[id] && (e.seen[id] || grace) || e.restarted[id] }
	next, st, dels, changed := decide(vw, gone, e.s.takeReorder())
	// Handled: a restarted server either left its chains in this epoch or
	// was kept as needed; either way it is an ordinary member from now on
	// (a lost publish leaves it in its chains, where it resumes on its data).
	e.restarted = map[string]bool{}
	if !changed && len(dels) == 0 {
		return
	}
	next.Epoch = vw.ring.Epoch + 1
	ringJSON, _ := next.Marshal()
	stJSON, _ := json.Marshal(st)
	cmps := []etcdmodel.Cmp{etcdmodel.CmpModRev(ringKey, etcdmodel.Equal, vw.ringRev),
		etcdmodel.CmpCreateRev(e.key, etcdmodel.Equal, e.createRev)}
	var ops []etcdmodel.Op
	if changed {
		ops = append(ops, etcdmodel.OpPut(ringKey, ringJSON, 0), etcdmodel.OpPut(ctlKey, stJSON, 0))
	}
	for _, k := range dels {
		ops = append(ops, etcdmodel.OpDelete(k))
	}
	leader := e.id
	e.s.etcdCall(e.id, func(now etcdmodel.Time) any {
		res, err := e.s.etcd.Txn(now, cmps, ops, nil)
		if err == nil && res.Succeeded && changed {
			e.s.ringPublished(next, leader)
		}
		if err == nil && !res.Succeeded {
			e.s.count("ring-cas-lost")
		}
		return nil
	}, e.gen, func(any) {})
}

// decide is the ECS's chain logic, on the ECS's own rules (ecs/core):
// clear marks of synced reports, fail over gone servers, promote ready
// learners, give under-replicated partitions a learner, and reorder chains
// to balance heads and tails (core.PlanRoles), plus the reorder asked for
// by the fault plan (ask: partition, rotation), if the partition may move.
func decide(vw view, gone func(string) bool, ask reorderAsk) (*ringmeta.Ring, ctlState, []string, bool) {
	next := vw.ring.Clone()
	st := ctlState{Unsynced: map[int][]core.Mark{}}
	var dels []string
	for k := range vw.synced {
		dels = append(dels, syncedKey(k[0], atoi(k[1])))
	}
	for k := range vw.ready {
		dels = append(dels, readyKey(k[0], atoi(k[1])))
	}
	slices.Sort(dels)
	load := map[string]int{}
	for _, ch := range next.Chains {
		for _, m := range ch.Members {
			load[m]++
		}
		if ch.Learner != "" {
			load[ch.Learner]++
		}
	}
	goneSet := map[string]bool{}
	for _, sv := range next.Servers {
		if gone(sv.ID) {
			goneSet[sv.ID] = true
		}
	}
	changed := false
	touched := map[int]bool{}
	for p := range next.Chains {
		before := core.Partition{Chain: next.Chains[p], Unsynced: vw.state.Unsynced[p]}
		pt := before
		for _, m := range before.Unsynced {
			if v, ok := vw.synced[[2]string{m.ID, strconv.Itoa(p)}]; ok {
				pt, _ = core.Clear(pt, m.ID, v)
			}
		}
		if canaryUnsyncedHead || canaryTwoHeads {
			pt.Unsynced = nil // the old stripping: marks ignored
		}
		pt = core.Remove(pt, goneSet)
		if l := pt.Chain.Learner; l != "" && pt.Chain.Version == before.Chain.Version {
			if v, ok := vw.ready[[2]string{l, strconv.Itoa(p)}]; ok {
				pt, _ = core.Promote(pt, l, v)
			}
		}
		if len(pt.Chain.Members) < vw.ring.Replicas && pt.Chain.Learner == "" && !pt.Frozen() &&
			pt.Chain.Version == before.Chain.Version && !goneSet[pt.Chain.Tail()] {
			if l := pickLearner(next, &pt.Chain, func(id string) bool { return goneSet[id] }, load); l != "" {
				if np, err := core.AddLearner(pt, l); err == nil {
					pt = np
					load[l]++
				}
			}
		}
		if err := core.Check(pt); err != nil {
			panic(fmt.Sprintf("partition %d: the ECS's rules broke their invariant: %v", p, err))
		}
		next.Chains[p] = pt.Chain
		if len(pt.Unsynced) > 0 {
			st.Unsynced[p] = pt.Unsynced
		}
		touched[p] = pt.Chain.Version != before.Chain.Version || len(pt.Unsynced) != len(before.Unsynced)
		changed = changed || touched[p]
	}
	movable := func(p int) bool {
		ch := next.Chains[p]
		return !touched[p] && ch.Learner == "" && len(st.Unsynced[p]) == 0 &&
			!slices.ContainsFunc(ch.Members, func(id string) bool { return goneSet[id] })
	}
	orders := core.PlanRoles(next.Chains, movable, 2)
	if ask.ok && ask.part < len(next.Chains) && movable(ask.part) {
		m := next.Chains[ask.part].Members
		k := ask.rot % len(m)
		orders[ask.part] = append(slices.Clone(m[k:]), m[:k]...)
	}
	for _, p := range slices.Sorted(maps.Keys(orders)) {
		pt, err := core.Reorder(core.Partition{Chain: next.Chains[p], Unsynced: st.Unsynced[p]}, orders[p])
		if err != nil {
			panic(fmt.Sprintf("partition %d: reorder %v refused: %v", p, orders[p], err))
		}
		if pt.Chain.Version != next.Chains[p].Version {
			next.Chains[p] = pt.Chain
			changed = true
		}
	}
	return next, st, dels, changed
}

// reorderAsk is a reorder the fault plan asks of the ECS.
type reorderAsk struct {
	ok        bool
	part, rot int
}

func pickLearner(r *ringmeta.Ring, ch *ringmeta.Chain, dead func(string) bool, load map[string]int) string {
	best := ""
	for _, s := range r.Servers {
		if dead(s.ID) || ch.Index(s.ID) >= 0 {
			continue
		}
		if best == "" || load[s.ID] < load[best] {
			best = s.ID
		}
	}
	return best
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
