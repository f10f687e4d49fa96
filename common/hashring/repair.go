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
type shortChains struct {
	want  int   // zones a full chain spans
	parts []int // ascending
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

// update rechecks partition p after a move.
func (sc *shortChains) update(st *state, p int) {
	if sc.want <= 1 {
		return
	}
	i, listed := slices.BinarySearch(sc.parts, p)
	switch short := st.zonesIn(p) < sc.want; {
	case short && !listed:
		sc.parts = slices.Insert(sc.parts, i, p)
	case !short && listed:
		sc.parts = slices.Delete(sc.parts, i, i+1)
	}
}

// findRepair looks for a move that adds a zone to a short chain: from a
// member whose zone another member shares, to the least loaded server of a
// zone the chain lacks, if that server stays within limit (the cap). Of all
// such moves it takes the one with the widest load gap between source and
// target (ties: the lowest partition), so that a repair also evens loads
// where it can and leaves the balancing moves less to undo.
func (st *state) findRepair(sc *shortChains, limit int) (move, bool) {
	if len(sc.parts) == 0 {
		return move{}, false
	}
	load := st.loads.load
	light, byLight := st.openZones(limit)
	var best move
	found := false
	for _, p := range sc.parts {
		t := st.lightestNewZone(p, light, byLight)
		if t < 0 || load[t] >= limit {
			continue // byLight is ascending: every other zone offers more
		}
		s := st.sharedZoneMember(p)
		if !found || load[s]-load[t] > load[best.from]-load[best.to] {
			best, found = move{p: p, from: s, to: t}, true
		}
	}
	return best, found
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
