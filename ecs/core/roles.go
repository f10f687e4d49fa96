package core

import (
	"slices"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// PlanRoles balances the head and tail roles over the servers by
// reordering chains (Reorder), at most limit of them: a server that joins
// becomes the tail of every chain it receives, and failover makes
// successors heads, so without it a few servers take most writes (heads)
// or most reads (tails). movable(p) says whether partition p may be
// reordered now. It returns the new orders by partition.
//
// It greedily applies, chain by chain, the order that lowers the sum over
// servers of heads² + tails² the most, until no order lowers it or limit
// chains changed: the sum is least when every server heads, and tails, as
// many chains as any other, give or take one.
func PlanRoles(chains []ringmeta.Chain, movable func(p int) bool, limit int) map[int][]string {
	heads, tails := map[string]int{}, map[string]int{}
	for _, ch := range chains {
		if len(ch.Members) > 0 {
			heads[ch.Head()]++
			tails[ch.Tail()]++
		}
	}
	out := map[int][]string{}
	for improved := true; improved && len(out) < limit; {
		improved = false
		for p, ch := range chains {
			if len(out) >= limit {
				break
			}
			cur := ch.Members
			if o, ok := out[p]; ok {
				cur = o
			}
			if len(cur) < 2 || !movable(p) {
				continue
			}
			best, gain := bestOrder(cur, heads, tails)
			if gain <= 0 {
				continue
			}
			heads[cur[0]]--
			tails[cur[len(cur)-1]]--
			heads[best[0]]++
			tails[best[len(best)-1]]++
			if slices.Equal(best, ch.Members) {
				delete(out, p)
			} else {
				out[p] = best
			}
			improved = true
		}
	}
	return out
}

// bestOrder returns the order of members that lowers heads² + tails² the
// most, and by how much: some member as head, another as tail, the others
// between them in their present order.
func bestOrder(members []string, heads, tails map[string]int) ([]string, int) {
	h, t := members[0], members[len(members)-1]
	// move is the change in m[x]² + m[y]² when one role goes from x to y.
	move := func(m map[string]int, x, y string) int {
		if x == y {
			return 0
		}
		a, b := m[x], m[y]
		return (a-1)*(a-1) + (b+1)*(b+1) - a*a - b*b
	}
	var best []string
	gain := 0
	for _, nh := range members {
		for _, nt := range members {
			if nh == nt {
				continue
			}
			if g := -(move(heads, h, nh) + move(tails, t, nt)); g > gain {
				best, gain = reordered(members, nh, nt), g
			}
		}
	}
	return best, gain
}

// reordered is members with head first, tail last and the rest between in
// their present order.
func reordered(members []string, head, tail string) []string {
	out := make([]string, 0, len(members))
	out = append(out, head)
	for _, m := range members {
		if m != head && m != tail {
			out = append(out, m)
		}
	}
	return append(out, tail)
}
