package hashring

import "slices"

type move struct{ p, from, to int }

// balance moves replicas until no move both helps and is allowed. Each
// round takes the first kind of move that finds one:
//
//  1. a repair adds a zone to a chain that spans fewer than it could, onto
//     a server that stays within the cap (repair.go);
//  2. a strict move narrows the gap between two servers whose loads differ
//     by two or more without costing its chain a zone;
//  3. a relaxed move takes a replica off a server above the cap, even at
//     the cost of a zone, onto the least loaded server (never above the cap
//     after it: a server above the mean means one below it).
//
// The loop ends: the excess above the cap summed over servers never grows
// (repairs stay within the cap, a strict move gives its target at most the
// source's old load minus one) and each relaxed move lowers it; while it
// stays put, the zones spanned summed over chains never fall and each repair
// raises them; while both stay put, each strict move lowers the sum of
// squared loads. The three together fall in lexicographic order with every
// move. A second run from the result finds nothing to do, since whether a
// move exists depends on the layout only, which makes Rebalance idempotent.
//
// published holds, per partition, the known members of the chain as last
// published (nil for a new layout); a server that held the partition there
// and rejoins it goes back to its old place (see rejoin).
func (st *state) balance(b bounds, published [][]int) {
	short := st.newShortChains()
	for {
		m, ok := st.findRepair(short, b.hi)
		if !ok {
			m, ok = st.findMove(b, true, short)
		}
		if !ok {
			// Keeping zones apart and the cap conflict (zones of unequal
			// size): the cap is the guarantee, so give up a zone.
			m, ok = st.findMove(b, false, short)
		}
		if !ok {
			return
		}
		st.remove(m.p, m.from)
		var was []int
		if published != nil {
			was = published[m.p]
		}
		st.rejoin(m.p, m.to, was)
		short.update(st, m, b.hi)
	}
}

// rejoin adds s to partition p's chain as the new tail, unless s is in the
// published chain was: then s never lost the data (it was cut from an
// over-long chain, or moved out earlier in this run because zones made the
// source of one move the target of a later one), and it goes back to its
// published place, so that members that stay are never reordered.
func (st *state) rejoin(p, s int, was []int) {
	i := slices.Index(was, s)
	if i < 0 {
		st.add(p, s)
		return
	}
	at := 0
	for _, o := range st.chains[p] {
		if j := slices.Index(was, o); j >= 0 && j < i {
			at++
		}
	}
	st.insert(p, s, at)
}

// findMove looks for a replica to move from the most loaded server that has
// one to give. A strict move keeps the chain's zones and aims at the tight
// band: a source above b.top may give to any server at least two below it,
// any other source only to a server below b.lo. A relaxed move may cost a
// zone and only serves the cap: its source is above b.hi.
func (st *state) findMove(b bounds, strict bool, short *shortChains) (move, bool) {
	sr := st.newSearch(strict)
	sr.repairing = sr.zoned && len(short.parts) > 0
	ord, load := st.loads.ord, st.loads.load
	minLoad := load[ord[0]]
	top, lo := b.top, b.lo
	if !strict {
		top, lo = b.hi, minLoad
	}
	for i := len(ord) - 1; i >= 0; i-- {
		s := ord[i]
		limit := load[s] - 2
		if load[s] <= top {
			limit = min(limit, lo-1)
		}
		if limit < minLoad {
			if load[s] <= top {
				return move{}, false // sources further down have even less
			}
			continue
		}
		find := sr.bestTarget
		if !strict {
			// Never past the cap: the least loaded server is below it and
			// missing from one of s's chains, s holding more than it.
			limit = min(limit, b.hi-1)
			if st.nzones > 1 {
				find = sr.widestChain
			}
		}
		if p, t, ok := find(s, limit, minLoad); ok {
			return move{p: p, from: s, to: t}, true
		}
	}
	return move{}, false
}

// search is one findMove call. The layout does not change during it, so
// for strict moves it computes once the least load in each zone, which lets
// it skip partitions whose allowed zones hold no server light enough, and
// start each scan at the first load an allowed zone can offer.
type search struct {
	st    *state
	zoned bool // strict moves in a layout with zones
	// repairing: some chain spans too few zones, so bestTarget prefers
	// moves that add one
	repairing bool
	zoneMin   []int // per zone: the least load, -1 until seen
	byMin     []int // zones by ascending zoneMin
}

func (st *state) newSearch(strict bool) *search {
	sr := &search{st: st, zoned: strict && st.nzones > 1}
	if !sr.zoned {
		return sr
	}
	sr.zoneMin = make([]int, st.nzones)
	for z := range sr.zoneMin {
		sr.zoneMin[z] = -1
	}
	for _, s := range st.loads.ord { // ascending, so byMin comes out sorted
		if z := st.zone[s]; sr.zoneMin[z] < 0 {
			sr.zoneMin[z] = st.loads.load[s]
			if sr.byMin = append(sr.byMin, z); len(sr.byMin) == st.nzones {
				break
			}
		}
	}
	return sr
}

// bestTarget returns the partition of s whose replica can go to the least
// loaded server (load <= limit), stopping early at the global minimum.
// While some chain spans too few zones, of the partitions that offer the
// same load it prefers one where the move adds a zone to the chain: such a
// move does a repair's work too, where another would leave it for an extra
// move later.
func (sr *search) bestTarget(s, limit, minLoad int) (p, t int, ok bool) {
	st := sr.st
	for _, q := range st.parts[s] {
		u := sr.lightest(q, s, limit)
		if u < 0 {
			continue
		}
		gains := sr.repairing && st.gainsZone(q, s, u)
		if ok && st.loads.load[u] == st.loads.load[t] && !gains {
			continue
		}
		p, t, ok, limit = q, u, true, st.loads.load[u]
		if !sr.repairing || gains {
			limit-- // nothing better at this load
		}
		if limit < minLoad {
			break
		}
	}
	return p, t, ok
}

// gainsZone reports whether replacing s by t in partition p's chain makes
// it span one more zone: another member shares s's zone, none shares t's.
func (st *state) gainsZone(p, s, t int) bool {
	dupS, hasT := false, false
	for _, o := range st.chains[p] {
		if o != s {
			dupS = dupS || st.zone[o] == st.zone[s]
			hasT = hasT || st.zone[o] == st.zone[t]
		}
	}
	return dupS && !hasT
}

// widestChain is bestTarget for relaxed moves in a layout with zones. Each
// costs its chain a zone (a strict move would have been found otherwise),
// so it takes the partition whose chain spans the most zones, so that no
// chain falls to one zone while others keep three, then the least loaded
// target.
func (sr *search) widestChain(s, limit, minLoad int) (p, t int, ok bool) {
	st := sr.st
	span := 0
	for _, q := range st.parts[s] {
		qs, lim := st.zonesIn(q), limit
		if ok && qs < span {
			continue
		}
		if ok && qs == span {
			if lim = st.loads.load[t] - 1; lim < minLoad {
				continue
			}
		}
		if u := sr.lightest(q, s, lim); u >= 0 {
			p, t, ok, span = q, u, true, qs
		}
	}
	return p, t, ok
}

// lightest returns the least loaded server with load <= limit that may
// replace s in partition p's chain, or -1.
func (sr *search) lightest(p, s, limit int) int {
	st := sr.st
	from := 0
	if sr.zoned {
		floor := sr.zoneFloor(p, s)
		if floor > limit {
			return -1
		}
		from = st.loads.start[floor]
	}
	for _, t := range st.loads.ord[from:] {
		if st.loads.load[t] > limit {
			return -1
		}
		if !st.inChain(p, t) && (!sr.zoned || st.keepsZones(p, s, t)) {
			return t
		}
	}
	return -1
}

// zoneFloor returns the least load among the zones a strict move may take
// s's replica in partition p to: every zone when another member shares s's
// zone, else s's zone and the zones the rest of the chain lacks.
func (sr *search) zoneFloor(p, s int) int {
	st := sr.st
	zs := st.zone[s]
	others := func(z int) bool {
		for _, o := range st.chains[p] {
			if o != s && st.zone[o] == z {
				return true
			}
		}
		return false
	}
	if others(zs) {
		return sr.zoneMin[sr.byMin[0]]
	}
	for _, z := range sr.byMin { // at most len(chain) zones are ruled out
		if z == zs || !others(z) {
			return sr.zoneMin[z]
		}
	}
	return sr.zoneMin[zs] // unreachable: zs itself is allowed
}

// keepsZones reports whether replacing s by t leaves partition p's chain
// spanning at least as many zones: true when t shares s's zone, when another
// member shares s's zone, or when t brings a zone the rest lacks.
func (st *state) keepsZones(p, s, t int) bool {
	zs, zt := st.zone[s], st.zone[t]
	if st.nzones <= 1 || zs == zt {
		return true
	}
	dupS, hasT := false, false
	for _, o := range st.chains[p] {
		if o != s {
			dupS = dupS || st.zone[o] == zs
			hasT = hasT || st.zone[o] == zt
		}
	}
	return dupS || !hasT
}

// loadOrder keeps servers sorted by load in O(1) per unit change: ord is
// sorted ascending by load, start[l] is the first index in ord whose load
// is >= l. A change swaps the server with the edge of its load's block, so
// the order of equal loads is arbitrary but deterministic.
type loadOrder struct {
	load  []int // per server
	ord   []int // servers by ascending load
	pos   []int // pos[s] is the index of s in ord
	start []int // len maxLoad+2
}

func newLoadOrder(n, maxLoad int) loadOrder {
	lo := loadOrder{load: make([]int, n), ord: make([]int, n), pos: make([]int, n), start: make([]int, maxLoad+2)}
	for s := range n {
		lo.ord[s], lo.pos[s] = s, s
	}
	for l := 1; l < len(lo.start); l++ {
		lo.start[l] = n // every server starts at load 0
	}
	return lo
}

func (lo *loadOrder) swap(i, j int) {
	a, b := lo.ord[i], lo.ord[j]
	lo.ord[i], lo.ord[j] = b, a
	lo.pos[a], lo.pos[b] = j, i
}

func (lo *loadOrder) inc(s int) {
	l := lo.load[s]
	last := lo.start[l+1] - 1 // last index of the block of load l
	lo.swap(lo.pos[s], last)
	lo.start[l+1]--
	lo.load[s]++
}

func (lo *loadOrder) dec(s int) {
	l := lo.load[s]
	lo.swap(lo.pos[s], lo.start[l])
	lo.start[l]++
	lo.load[s]--
}
