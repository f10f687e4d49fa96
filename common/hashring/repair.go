package hashring

import "slices"

// This file is the zone repair of balance: a chain whose members share a
// zone while another zone has room gets a member there. Initial's walk
// already spreads zones; repair is what keeps them spread when servers of a
// zone join after the first layout, since load balancing alone never moves a
// replica for its zone.

// shortChains tracks the partitions whose chain spans fewer zones than it
// could, min(r, nzones): the only ones a repair can help. A move changes
// one chain, so balance rechecks just that one after each move.
//
// Where zones are too unequal for every chain to span them, most short
// chains stay beyond repair, and rescanning them all on every balancing
// move made a first layout of 1000 servers ten times slower. So once a full
// scan finds nothing, the tracker is idle: it lists in dirty the chains a
// move may have made repairable, and findRepair scans only those, until a
// move gives a server or a zone room (see update).
type shortChains struct {
	want   int   // zones a full chain spans
	parts  []int // ascending
	idle   bool
	dirty  []int  // while idle: short chains changed since the last scan
	lacked []bool // while idle: zones some short chain lacks
}

func (st *state) newShortChains() *shortChains {
	sc := &shortChains{want: min(st.r, st.nzones)}
	if sc.want <= 1 {
		return sc
	}
	for p := range st.chains {
		if st.zonesIn(p) < sc.want {
			sc.parts = append(sc.parts, p)
		}
	}
	return sc
}

// update rechecks partition m.p after move m. A repair can only have
// become possible where the move changed a chain that is still short, or
// where its source came down from above limit (its zone may open, see
// openZones) or from limit in a zone a short chain lacks (it has room now):
// a load that rises never makes one.
func (sc *shortChains) update(st *state, m move, limit int) {
	if sc.want <= 1 {
		return
	}
	i, listed := slices.BinarySearch(sc.parts, m.p)
	short := st.zonesIn(m.p) < sc.want
	switch {
	case short && !listed:
		sc.parts = slices.Insert(sc.parts, i, m.p)
	case !short && listed:
		sc.parts = slices.Delete(sc.parts, i, i+1)
	}
	if !sc.idle {
		return
	}
	was := st.loads.load[m.from] + 1
	switch {
	case was > limit || was == limit && sc.lacked[st.zone[m.from]]:
		sc.idle, sc.dirty = false, sc.dirty[:0]
	case short && !slices.Contains(sc.dirty, m.p):
		sc.dirty = append(sc.dirty, m.p)
		sc.markLacked(st, m.p)
	}
}

// markLacked marks in sc.lacked the zones partition p's chain lacks.
func (sc *shortChains) markLacked(st *state, p int) {
	for z := range sc.lacked {
		if !sc.lacked[z] && !slices.ContainsFunc(st.chains[p], func(o int) bool { return st.zone[o] == z }) {
			sc.lacked[z] = true
		}
	}
}

// findRepair looks for a move that adds a zone to a short chain: from a
// member whose zone another member shares, to the least loaded server of a
// zone the chain lacks, if that server stays within limit (the cap). Of all
// such moves it takes the one with the widest load gap between source and
// target (ties: the lowest partition), so that a repair also evens loads
// where it can and leaves the balancing moves less to undo.
func (st *state) findRepair(sc *shortChains, limit int) (move, bool) {
	cands := sc.parts
	if sc.idle {
		cands = sc.dirty
	}
	if len(cands) == 0 {
		return move{}, false
	}
	load, ord := st.loads.load, st.loads.ord
	widest := load[ord[len(ord)-1]] - load[ord[0]] // no gap is wider
	light, byLight := st.openZones(limit)
	var best move
	found := false
	for _, p := range cands {
		if found && !sc.idle && load[best.from]-load[best.to] == widest {
			break // and cands is ascending, so best.p is the lowest
		}
		if sc.idle && st.zonesIn(p) >= sc.want {
			continue // repaired since it was listed
		}
		t := st.lightestNewZone(p, light, byLight)
		if t < 0 || load[t] >= limit {
			continue // byLight is ascending: every other zone offers more
		}
		s := st.sharedZoneMember(p)
		gap, bestGap := load[s]-load[t], load[best.from]-load[best.to]
		if !found || gap > bestGap || gap == bestGap && p < best.p {
			best, found = move{p: p, from: s, to: t}, true
		}
	}
	if !found {
		sc.goIdle(st)
	}
	return best, found
}

// goIdle starts an idle spell after a scan found no repair.
func (sc *shortChains) goIdle(st *state) {
	sc.dirty = sc.dirty[:0]
	if sc.idle {
		return
	}
	sc.idle = true
	in := make([]int, st.nzones) // short chains per zone
	for _, p := range sc.parts {
		for i, s := range st.chains[p] {
			if z := st.zone[s]; !slices.ContainsFunc(st.chains[p][:i], func(o int) bool { return st.zone[o] == z }) {
				in[z]++
			}
		}
	}
	sc.lacked = make([]bool, st.nzones)
	for z, n := range in {
		sc.lacked[z] = n < len(sc.parts)
	}
}

// openZones returns the least loaded server of each zone open to repairs,
// -1 for the others, and the open zones by ascending load of that server.
// A zone with a server above limit is closed: that server must first give
// replicas to its zone-mates (a strict move keeps the zones), and a repair
// into the zone would take the room those need and force a zone-costing
// relaxed move later.
func (st *state) openZones(limit int) (light, byLight []int) {
	light = make([]int, st.nzones)
	for z := range light {
		light[z] = -1
	}
	byLight = make([]int, 0, st.nzones)
	closed := make([]bool, st.nzones)
	for _, s := range st.loads.ord[st.loads.start[min(limit+1, len(st.loads.start)-1)]:] {
		closed[st.zone[s]] = st.loads.load[s] > limit
	}
	for _, s := range st.loads.ord { // ascending, so byLight comes out sorted
		if z := st.zone[s]; light[z] < 0 && !closed[z] {
			light[z] = s
			byLight = append(byLight, z)
		}
	}
	return light, byLight
}

// lightestNewZone returns the least loaded server of an open zone partition
// p's chain does not use, or -1. A server of a zone the chain lacks is
// never in it. At most len(chain) zones are skipped.
func (st *state) lightestNewZone(p int, light, byLight []int) int {
	for _, z := range byLight {
		if !slices.ContainsFunc(st.chains[p], func(o int) bool { return st.zone[o] == z }) {
			return light[z]
		}
	}
	return -1
}

// sharedZoneMember returns the member of partition p to move out for a
// repair: of those whose zone another member shares (a short full chain
// has one, by pigeonhole), the most loaded, and on a tie the one furthest
// from the head, so the head and the chain's order change least.
func (st *state) sharedZoneMember(p int) int {
	chain, load := st.chains[p], st.loads.load
	best := -1
	for i, s := range chain {
		shared := slices.ContainsFunc(chain, func(o int) bool { return o != s && st.zone[o] == st.zone[s] })
		if shared && (best < 0 || load[s] >= load[chain[best]]) {
			best = i
		}
	}
	return chain[best]
}
