package hashring

import (
	"cmp"
	"fmt"
	"slices"
)

// Rebalance starts from the current chains (as published; they may name
// servers no longer in servers, and may be shorter or longer than replicas)
// and returns new chains that change them minimally:
//
//   - members not in servers are dropped, the others keep their order; a
//     repeated member is kept once, and a chain longer than
//     min(replicas, len(servers)) is cut to its head-most members (balancing
//     may then keep a cut member instead of another: it has the data);
//   - a chain shorter than that gets the least loaded eligible servers
//     appended at the tail, preferring zones the chain does not use yet;
//   - then single replicas move: from a member whose zone another member
//     shares to a server of a zone the chain lacks, while that server stays
//     within the cap (1.10x the mean), so that a chain spans min(replicas,
//     zones) zones wherever the cap allows, also after servers of a zone
//     join late; and from the most to the least loaded servers until no
//     server exceeds the cap and, where zones allow, every server holds the
//     mean rounded down or up. A moved replica leaves its chain and the
//     receiver joins as the new tail, since a new member always catches up
//     behind the old tail (DESIGN §4).
//
// Members that stay keep their published order and come before new ones. A
// chain never holds a server twice. A move never reduces the number of
// zones a chain spans unless the cap cannot be met otherwise, and then it
// takes the zone from a chain that spans the most. The result does not
// depend on the order of servers. A short chain's new member is the first
// server after its tail in the ring order of Initial's runs of neighbours
// (the same options give the same order) while that one is below the band
// (see placeOnRing).
func Rebalance(current [][]string, servers []Server, replicas int, opts ...Option) ([][]string, error) {
	if err := checkShape(len(current), replicas); err != nil {
		return nil, err
	}
	st, index, err := newState(servers, len(current), replicas)
	if err != nil {
		return nil, err
	}
	st.placeOnRing(buildOptions(opts))
	published, backing := make([][]int, len(current)), make([]int, 0, len(current)*st.r)
	for p, chain := range current {
		from := len(backing)
		for _, id := range chain {
			if s, ok := index[id]; ok && !slices.Contains(backing[from:], s) {
				backing = append(backing, s)
			}
		}
		published[p] = backing[from:len(backing):len(backing)]
		for _, s := range published[p][:min(len(published[p]), st.r)] {
			st.add(p, s)
		}
	}
	b := loadBounds(len(current), st.r, len(st.ids))
	for p := range st.chains {
		for len(st.chains[p]) < st.r {
			st.add(p, st.pickTail(p, b))
		}
	}
	st.balance(b, published)
	return st.export(), nil
}

// state is a mutable working copy of a layout, with servers numbered by
// their position in ids (sorted, so the numbering ignores input order).
type state struct {
	r      int // chain length: min(replicas, servers)
	ids    []string
	zone   []int // zone number per server
	nzones int
	chains [][]int // per partition: server numbers, head first
	parts  [][]int // per server: the partitions it is in, ascending
	loads  loadOrder
	rank   []int // per server: its place in ring order (placeOnRing)
	order  []int // servers in ring order
}

// newState validates the servers and returns an empty layout of the given
// shape; replicas must already be validated. The chains share one backing
// array, each capped at r so that an append cannot spill into the next.
func newState(servers []Server, partitions, replicas int) (*state, map[string]int, error) {
	if len(servers) == 0 {
		return nil, nil, ErrNoServers
	}
	sorted := slices.Clone(servers)
	slices.SortFunc(sorted, func(a, b Server) int { return cmp.Compare(a.ID, b.ID) })
	n := len(sorted)
	st := &state{r: min(replicas, n), ids: make([]string, n), zone: make([]int, n)}
	index := make(map[string]int, n)
	zones := make(map[string]int)
	for i, s := range sorted {
		if s.ID == "" {
			return nil, nil, ErrEmptyServerID
		}
		if _, dup := index[s.ID]; dup {
			return nil, nil, fmt.Errorf("%w: %q", ErrDuplicateServer, s.ID)
		}
		index[s.ID] = i
		z, ok := zones[s.Zone]
		if !ok {
			z = len(zones)
			zones[s.Zone] = z
		}
		st.ids[i], st.zone[i] = s.ID, z
	}
	st.nzones = len(zones)

	r := st.r
	backing := make([]int, partitions*r)
	st.chains = make([][]int, partitions)
	for p := range st.chains {
		st.chains[p] = backing[p*r : p*r : p*r+r]
	}
	share := loadBounds(partitions, r, n).hi + 1
	st.parts = make([][]int, n)
	for s := range st.parts {
		st.parts[s] = make([]int, 0, share)
	}
	st.loads = newLoadOrder(n, partitions)
	return st, index, nil
}

func (st *state) add(p, s int) { st.insert(p, s, len(st.chains[p])) }

// insert puts s at position at of partition p's chain.
func (st *state) insert(p, s, at int) {
	st.chains[p] = slices.Insert(st.chains[p], at, s)
	i, _ := slices.BinarySearch(st.parts[s], p)
	st.parts[s] = slices.Insert(st.parts[s], i, p)
	st.loads.inc(s)
}

func (st *state) remove(p, s int) {
	st.chains[p] = slices.DeleteFunc(st.chains[p], func(o int) bool { return o == s })
	i, _ := slices.BinarySearch(st.parts[s], p)
	st.parts[s] = slices.Delete(st.parts[s], i, i+1)
	st.loads.dec(s)
}

func (st *state) inChain(p, s int) bool { return slices.Contains(st.chains[p], s) }

func (st *state) zoneUsed(p, s int) bool {
	return slices.ContainsFunc(st.chains[p], func(o int) bool { return st.zone[o] == st.zone[s] })
}

func (st *state) export() [][]string {
	out := make([][]string, len(st.chains))
	backing := make([]string, 0, len(st.chains)*st.r)
	for p, chain := range st.chains {
		from := len(backing)
		for _, s := range chain {
			backing = append(backing, st.ids[s])
		}
		out[p] = backing[from:len(backing):len(backing)]
	}
	return out
}

// pickTail returns the server to append to partition p's chain: the
// nearest after its tail on the ring below the band's floor that keeps its
// zones (nextOnRing), else the least loaded one not in it, from a new zone
// if one is under the cap, else any under the cap, else a new zone, else
// the least loaded.
func (st *state) pickTail(p int, b bounds) int {
	if t := st.nextOnRing(p, b.lo); t >= 0 {
		return t
	}
	limit := b.hi
	load := st.loads.load
	allZones := st.nzones <= 1 || st.zonesIn(p) == st.nzones
	least := -1
	for _, t := range st.loads.ord {
		if st.inChain(p, t) {
			continue
		}
		if least < 0 {
			least = t
		}
		if allZones || !st.zoneUsed(p, t) {
			if load[t] < limit || load[least] >= limit {
				return t
			}
			return least
		}
		if load[t] >= limit && load[least] < limit {
			return least
		}
	}
	return least
}

func (st *state) zonesIn(p int) int {
	n := 0
	for i, s := range st.chains[p] {
		if !slices.ContainsFunc(st.chains[p][:i], func(o int) bool { return st.zone[o] == st.zone[s] }) {
			n++
		}
	}
	return n
}
