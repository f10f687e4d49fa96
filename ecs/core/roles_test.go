package core

import (
	"fmt"
	"math"
	"testing"

	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

// roleCounts returns each server's heads and tails.
func roleCounts(chains []ringmeta.Chain) (heads, tails map[string]int) {
	heads, tails = map[string]int{}, map[string]int{}
	for _, ch := range chains {
		heads[ch.Head()]++
		tails[ch.Tail()]++
	}
	return heads, tails
}

// balanced reports whether no server has more of a role than the larger of
// 1.10 x the mean and the mean rounded up (counts are whole).
func balanced(t *testing.T, what string, counts map[string]int, servers, partitions int) {
	t.Helper()
	mean := float64(partitions) / float64(servers)
	bound := max(1.10*mean, math.Ceil(mean))
	for s, n := range counts {
		require.LessOrEqual(t, float64(n), bound, "%s of %s: %d, mean %.2f (%v)", what, s, n, mean, counts)
	}
}

// reorderAll applies PlanRoles until it has nothing left to do.
func reorderAll(t *testing.T, chains []ringmeta.Chain) []ringmeta.Chain {
	for round := 0; ; round++ {
		require.Less(t, round, 1000, "PlanRoles does not converge")
		plan := PlanRoles(chains, func(int) bool { return true }, 16)
		if len(plan) == 0 {
			return chains
		}
		for p, order := range plan {
			pt, err := Reorder(Partition{Chain: chains[p]}, order)
			require.NoError(t, err)
			chains[p] = pt.Chain
		}
	}
}

func servers(n int) []hashring.Server {
	out := make([]hashring.Server, n)
	for i := range out {
		out[i] = hashring.Server{ID: fmt.Sprintf("s%d", i+1)}
	}
	return out
}

// TestPlanRolesBalances: after any layout change (a server joins and takes
// the tail of every chain it receives; a server fails and its successors
// become heads) the heads and tails per server end within 1.10 x the mean,
// for 3 to 100 servers.
func TestPlanRolesBalances(t *testing.T) {
	for _, n := range []int{3, 4, 5, 7, 10, 16, 25, 50, 100} {
		t.Run(fmt.Sprintf("servers=%d", n), func(t *testing.T) {
			const partitions, r = 1024, 3
			layout, err := hashring.Initial(servers(n), partitions, r)
			require.NoError(t, err)
			chains := make([]ringmeta.Chain, partitions)
			for p, m := range layout {
				chains[p] = ringmeta.Chain{Members: m, Version: 1}
			}
			check := func(step string) {
				heads, tails := roleCounts(chains)
				balanced(t, step+": heads", heads, n, partitions)
				balanced(t, step+": tails", tails, n, partitions)
			}
			// The first layout's roles are even already: reordering
			// would cost chain changes and break its runs of neighbours.
			require.Empty(t, PlanRoles(chains, func(int) bool { return true }, partitions), "initial layout")
			check("initial")

			// s1 fails: dropped from every chain (its successors head).
			for p := range chains {
				ch := &chains[p]
				if i := ch.Index("s1"); i >= 0 && len(ch.Members) > 1 {
					ch.Members = append(ch.Members[:i:i], ch.Members[i+1:]...)
					ch.Version++
				}
			}
			// It rejoins, taking back a third of the chains as their tail.
			for p := range chains {
				ch := &chains[p]
				if len(ch.Members) < r && ch.Index("s1") < 0 {
					ch.Members = append(ch.Members, "s1")
					ch.Version++
				}
			}
			chains = reorderAll(t, chains)
			check("after a failover and a rejoin")
			for p := range chains {
				require.Len(t, chains[p].Members, r, "partition %d", p)
			}
		})
	}
}

// TestPlanRolesRespectsMovable: partitions that may not move are left as
// they are, and the limit holds.
func TestPlanRolesRespectsMovable(t *testing.T) {
	chains := []ringmeta.Chain{
		{Members: []string{"a", "b", "c"}, Version: 1},
		{Members: []string{"a", "b", "c"}, Version: 1},
		{Members: []string{"a", "b", "c"}, Version: 1},
	}
	plan := PlanRoles(chains, func(p int) bool { return p != 0 }, 1)
	require.Len(t, plan, 1)
	_, moved0 := plan[0]
	require.False(t, moved0)
	plan = PlanRoles(chains, func(p int) bool { return p != 0 }, 10)
	require.Len(t, plan, 2)
}

func TestReorder(t *testing.T) {
	pt := Partition{Chain: ringmeta.Chain{Members: []string{"a", "b", "c"}, Version: 4}}
	out, err := Reorder(pt, []string{"c", "a", "b"})
	require.NoError(t, err)
	require.Equal(t, []string{"c", "a", "b"}, out.Chain.Members)
	require.EqualValues(t, 5, out.Chain.Version)
	require.NoError(t, CheckStep(pt, out))
	same, err := Reorder(pt, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.EqualValues(t, 4, same.Chain.Version)
	for _, bad := range [][]string{{"a", "b"}, {"a", "b", "d"}, {"a", "a", "b"}} {
		_, err := Reorder(pt, bad)
		require.ErrorIs(t, err, ErrNotMember, "%v", bad)
	}
	frozen := Partition{Chain: pt.Chain, Unsynced: []Mark{{ID: "c", Version: 4}}}
	_, err = Reorder(frozen, []string{"c", "a", "b"})
	require.ErrorIs(t, err, ErrFrozen)
	busy := Partition{Chain: ringmeta.Chain{Members: []string{"a", "b"}, Learner: "c", Version: 4}}
	_, err = Reorder(busy, []string{"b", "a"})
	require.ErrorIs(t, err, ErrLearnerBusy)
}
