package sim

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/sim/etcdmodel"
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
}

// ctlState is what the ECS keeps in etcd beside the ring, in the same txn.
type ctlState struct {
	// Unsynced lists, per partition, members that may lack writes
	// committed before they joined, with the chain version they joined at.
	Unsynced map[int][]mark `json:"unsynced,omitempty"`
}

type mark struct {
	ID  string `json:"id"`
	Ver uint64 `json:"ver"`
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
	for id := range vw.live {
		e.seen[id] = true
	}
	grace := e.s.now-e.since >= int64(e.s.opt.MemberTTL)
	dead := func(id string) bool { return !vw.live[id] && (e.seen[id] || grace) }
	next, st, dels, changed := decide(vw, dead)
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

// decide is the ECS's chain logic: failover, promotion, re-replication,
// with the safety rules of DESIGN §4 (an unsynced member never becomes head
// or sole member; a chain keeps a member known to hold every acknowledged
// write).
func decide(vw view, dead func(string) bool) (*ringmeta.Ring, ctlState, []string, bool) {
	next := vw.ring.Clone()
	st := ctlState{Unsynced: map[int][]mark{}}
	var dels []string
	for p, ms := range vw.state.Unsynced {
		for _, m := range ms {
			k := [2]string{m.ID, strconv.Itoa(p)}
			if v, ok := vw.synced[k]; ok && v >= m.Ver {
				continue
			}
			st.Unsynced[p] = append(st.Unsynced[p], m)
		}
	}
	for k := range vw.synced {
		dels = append(dels, syncedKey(k[0], atoi(k[1])))
	}
	changed := len(st.Unsynced) != len(vw.state.Unsynced)
	load := map[string]int{}
	for _, ch := range next.Chains {
		for _, m := range ch.Members {
			load[m]++
		}
		if ch.Learner != "" {
			load[ch.Learner]++
		}
	}
	for p := range next.Chains {
		ch := &next.Chains[p]
		unsynced := func(id string) bool {
			return slices.ContainsFunc(st.Unsynced[p], func(m mark) bool { return m.ID == id })
		}
		if stripChain(ch, dead, unsynced, st, p) {
			ch.Version++
			changed = true
			continue
		}
		// Promotion: a ready learner becomes the tail, marked unsynced.
		if ch.Learner != "" {
			if v, ok := vw.ready[[2]string{ch.Learner, strconv.Itoa(p)}]; ok && v == ch.Version {
				ch.Members = append(slices.Clone(ch.Members), ch.Learner)
				ch.Version++
				st.Unsynced[p] = append(st.Unsynced[p], mark{ID: ch.Learner, Ver: ch.Version})
				ch.Learner = ""
				changed = true
			}
			continue
		}
		// Re-replication, one partition at a time per step is plenty here.
		if len(ch.Members) < vw.ring.Replicas && len(st.Unsynced[p]) == 0 && !dead(ch.Tail()) {
			if l := pickLearner(next, ch, dead, load); l != "" {
				ch.Learner = l
				load[l]++
				ch.Version++
				changed = true
			}
		}
	}
	for k := range vw.ready {
		dels = append(dels, readyKey(k[0], atoi(k[1])))
	}
	for p, ms := range st.Unsynced {
		if len(ms) == 0 {
			delete(st.Unsynced, p)
		}
	}
	slices.Sort(dels)
	return next, st, dels, changed
}

// stripChain removes dead members and learners under the safety rules and
// reports whether the chain changed.
func stripChain(ch *ringmeta.Chain, dead, unsynced func(string) bool, st ctlState, p int) bool {
	unsynced = canaryMarks(unsynced) // simcanary_unsyncedhead: marks ignored; unchanged otherwise
	changed := false
	if ch.Learner != "" && dead(ch.Learner) {
		ch.Learner, changed = "", true
	}
	if !slices.ContainsFunc(ch.Members, dead) {
		return changed
	}
	var keep []string
	var demoted string
	predGone := false
	for _, m := range ch.Members {
		switch {
		case dead(m):
			predGone = true
		case unsynced(m) && predGone:
			// It may lack entries only its removed predecessor kept.
			demoted = m
		default:
			keep = append(keep, m)
			predGone = false
		}
	}
	keep, demoted, unsynced = canarySoleMember(keep, demoted, unsynced) // simcanary_twoheads: unchanged otherwise
	if !slices.ContainsFunc(keep, func(m string) bool { return !unsynced(m) }) || unsynced(keep[0]) {
		return changed // no member known to hold every acknowledged write: wait
	}
	ch.Members = keep
	if demoted != "" {
		ch.Learner = demoted
	}
	removeMarks(st, p, ch)
	return true
}

// removeMarks drops marks of servers no longer members.
func removeMarks(st ctlState, p int, ch *ringmeta.Chain) {
	ms := st.Unsynced[p][:0]
	for _, m := range st.Unsynced[p] {
		if ch.Index(m.ID) >= 0 {
			ms = append(ms, m)
		}
	}
	st.Unsynced[p] = ms
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
