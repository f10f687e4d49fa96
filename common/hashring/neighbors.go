package hashring

import (
	"cmp"
	"slices"
)

// neighbors lays out the chains of a new cluster as runs of neighbours: the
// servers stand in ring order (each at one token, the hash of its id, with
// zones taking turns), and run g, P/N consecutive partitions (an arc of the
// hash ring), has the chain of server g and the R-1 servers after it.
//
// Each server so heads one run, is the middle of the run before and the
// tail of the one before that: with R = 3 it forwards updates only to the
// server after it and acknowledges only to the one before, whatever N. A
// layout that scatters chains over all servers makes each server send to
// every other: a step of a few writes becomes a message to each of several
// peers instead of one: on five servers 10.2 system calls per write
// against 6.6, and a fifth of the write throughput. It is also the layout that loses least when servers
// fail together (copysets): only N sets of R servers hold a partition
// entirely, where a scattered layout stores some partition on nearly every
// set, so R simultaneous failures lose data only when they are neighbours.
//
// Run sizes differ by at most one and are spread evenly (run g ends at
// (g+1)*P/N), so any R consecutive runs, a server's load, hold the mean
// number of replicas rounded down or up, and heads and tails are as even.
func (st *state) neighbors() {
	order := st.order
	n, parts := len(order), len(st.chains)
	for g := range n {
		for p := g * parts / n; p < (g+1)*parts/n; p++ {
			for k := range st.r {
				st.add(p, order[(g+k)%n])
			}
		}
	}
}

// ringOrder returns the servers in the order neighbors places them: by
// token, with the zones taking turns (the largest zone first) so that R
// consecutive servers span min(R, zones) zones wherever the zones are
// about equal.
func (st *state) ringOrder(o options) []int {
	n := len(st.ids)
	token := make([]uint64, n)
	for s, id := range st.ids {
		token[s] = o.hash([]byte(id))
	}
	byZone := make([][]int, st.nzones)
	for s := range n {
		byZone[st.zone[s]] = append(byZone[st.zone[s]], s)
	}
	for _, z := range byZone {
		slices.SortFunc(z, func(a, b int) int {
			return cmp.Or(cmp.Compare(token[a], token[b]), a-b)
		})
	}
	// Zone numbers follow the sorted ids, so ties of size break the same
	// way whatever the order of the input.
	zones := make([]int, st.nzones)
	for z := range zones {
		zones[z] = z
	}
	slices.SortStableFunc(zones, func(a, b int) int { return len(byZone[b]) - len(byZone[a]) })
	order := make([]int, 0, n)
	for i := 0; len(order) < n; i++ {
		for _, z := range zones {
			if i < len(byZone[z]) {
				order = append(order, byZone[z][i])
			}
		}
	}
	return order
}

// placeOnRing records the ring order of the servers, by which Rebalance
// gives a chain that lost a member the server after its tail, while that
// one is below the band: a failed server's arcs go first to the servers
// after it, which in runs of neighbours hold the fewest replicas then, so
// a failover copies about the P*R/N replicas it must (least-loaded-first
// took 1.09x that on five servers). It does not keep the runs whole: to
// even the loads every survivor takes some, and a server that joins takes
// replicas from every server above the new mean.
func (st *state) placeOnRing(o options) {
	st.order = st.ringOrder(o)
	st.rank = make([]int, len(st.order))
	for i, s := range st.order {
		st.rank[s] = i
	}
}

// nextOnRing returns the first server after partition p's tail on the ring
// that is not in the chain, holds fewer than below replicas and, unless the
// chain spans every zone, is in a zone it lacks; or -1.
func (st *state) nextOnRing(p, below int) int {
	c := st.chains[p]
	if len(c) == 0 {
		return -1
	}
	allZones := st.nzones <= 1 || st.zonesIn(p) == st.nzones
	n, from := len(st.order), st.rank[c[len(c)-1]]
	for i := 1; i < n; i++ {
		t := st.order[(from+i)%n]
		if st.loads.load[t] < below && !st.inChain(p, t) && (allZones || !st.zoneUsed(p, t)) {
			return t
		}
	}
	return -1
}
