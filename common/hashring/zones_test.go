package hashring

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestZones: with three equal zones every chain spans all three, after
// Initial and after adding or removing a server.
func TestZones(t *testing.T) {
	cases := []struct {
		name     string
		perZone  int
		addZone  string // zone of an added server
		dropZone string // zone of a removed server
	}{
		{name: "3x4", perZone: 4, addZone: "a"},
		{name: "3x10", perZone: 10, addZone: "a", dropZone: "b"},
		{name: "3x33", perZone: 33, addZone: "c", dropZone: "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers := makeServers(3*tc.perZone, "a", "b", "c")
			chains, err := Initial(servers, 1024, 3)
			require.NoError(t, err)
			requireZones(t, chains, servers, 3)
			type step struct {
				what    string
				servers []Server
			}
			steps := []step{{"add", append(slices.Clone(servers), Server{ID: "new", Zone: tc.addZone})}}
			if tc.dropZone != "" {
				i := slices.IndexFunc(servers, func(s Server) bool { return s.Zone == tc.dropZone })
				steps = append(steps, step{"remove", without(servers, servers[i].ID)})
			}
			for _, step := range steps {
				after, err := Rebalance(chains, step.servers, 3)
				require.NoError(t, err)
				requireValid(t, after, step.servers, 3)
				requireZones(t, after, step.servers, 3)
				t.Logf("%s: moved %d", step.what, movedReplicas(chains, after))
			}
		})
	}
}

// requireZones checks that every chain spans `zones` zones and that the load
// bound holds.
func requireZones(t *testing.T, chains [][]string, servers []Server, zones int) {
	t.Helper()
	zoneOf := make(map[string]string, len(servers))
	for _, s := range servers {
		zoneOf[s.ID] = s.Zone
	}
	for p, chain := range chains {
		seen := map[string]bool{}
		for _, id := range chain {
			seen[zoneOf[id]] = true
		}
		require.Len(t, seen, zones, "partition %d: %v", p, chain)
	}
	ratio, _ := loadRatio(chains, len(servers))
	t.Logf("max/mean %.3f", ratio)
	require.LessOrEqual(t, ratio, 1.10)
}

// With zones of unequal size, one replica per zone would overload the small
// zone; the load bound wins and the other chains keep their zones apart.
func TestZonesUnequalKeepLoadBound(t *testing.T) {
	servers := append(makeServers(10, "big-a", "big-b"), Server{ID: "lonely", Zone: "small"})
	chains, err := Initial(servers, 1024, 3)
	require.NoError(t, err)
	requireValid(t, chains, servers, 3)
	ratio, _ := loadRatio(chains, len(servers))
	require.LessOrEqual(t, ratio, 1.10)
	zoneOf := map[string]string{}
	for _, s := range servers {
		zoneOf[s.ID] = s.Zone
	}
	twoZones := 0
	for _, chain := range chains {
		if zoneOf[chain[0]] != zoneOf[chain[1]] || zoneOf[chain[1]] != zoneOf[chain[2]] {
			twoZones++
		}
	}
	t.Logf("max/mean %.3f, chains spanning >= 2 zones: %d/%d", ratio, twoZones, len(chains))
	require.Equal(t, len(chains), twoZones)
}

// TestZonesLateJoin adds servers one at a time and rebalances after each,
// as the ECS does when they register: a third zone joining a cluster laid
// out over two, and servers of three zones joining in turn from 3 to 12.
// After every step as many chains span the three zones as the cap allows
// (all of them once the zones are equal enough), none stays in one zone,
// the moves stay near what the join needs, and the result is Rebalance's
// fixed point whatever the order of the servers.
func TestZonesLateJoin(t *testing.T) {
	const p, r = 1024, 3
	lettered := func(zone string, n int) []Server {
		out := make([]Server, n)
		for i := range out {
			out[i] = Server{ID: fmt.Sprintf("%s%d", zone, i), Zone: zone}
		}
		return out
	}
	roundRobin := makeServers(12, "a", "b", "c")
	cases := []struct {
		name        string
		start, adds []Server
	}{
		{name: "third zone joins 2x2", start: append(lettered("a", 2), lettered("b", 2)...), adds: lettered("c", 2)},
		{name: "third zone joins 3x3", start: append(lettered("a", 3), lettered("b", 3)...), adds: lettered("c", 3)},
		{name: "third zone joins 5x5", start: append(lettered("a", 5), lettered("b", 5)...), adds: lettered("c", 5)},
		{name: "zones in turn 3 to 12", start: roundRobin[:3], adds: roundRobin[3:]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers := tc.start
			chains, err := Initial(servers, p, r)
			require.NoError(t, err)
			for _, add := range tc.adds {
				servers = append(slices.Clone(servers), add)
				after, err := Rebalance(chains, servers, r)
				require.NoError(t, err)
				shuffled := slices.Clone(servers)
				slices.Reverse(shuffled)
				same, err := Rebalance(chains, shuffled, r)
				require.NoError(t, err)
				require.Equal(t, after, same, "the order of servers must not matter")
				requireValid(t, after, servers, r)
				requireChainOrder(t, chains, after)
				checkLateJoin(t, chains, after, servers, r)
				again, err := Rebalance(after, servers, r)
				require.NoError(t, err)
				require.Equal(t, after, again, "second rebalance must be a no-op")
				chains = after
			}
			requireZones(t, chains, servers, 3) // the zones end equal
		})
	}
}

// checkLateJoin checks one join of a three-zone cluster: the load cap, every
// chain in two zones or more, as many spanning three as fullSpreadBound
// allows, and the moves within 1.15x the ideal P*R/N of a join (the bound
// TestChurn holds without zones) plus one per chain that spanned too few
// zones before (each may need a move of its own to gain one). A fresh layout
// would move up to several times as many, never fewer.
func checkLateJoin(t *testing.T, before, after [][]string, servers []Server, r int) {
	t.Helper()
	n, p := len(servers), len(after)
	ratio, _ := loadRatio(after, n)
	require.LessOrEqual(t, ratio, 1.10, "n=%d", n)
	shortBefore := p - zoneSpans(before, servers)[3]
	spans := zoneSpans(after, servers)
	require.Zero(t, spans[1], "n=%d: chains in one zone", n)
	want := fullSpreadBound(servers, p, r)
	require.GreaterOrEqual(t, spans[3], want, "n=%d: chains spanning the three zones", n)
	moved, ideal := movedReplicas(before, after), float64(p*r)/float64(n)
	fresh, err := Initial(servers, p, r)
	require.NoError(t, err)
	t.Logf("n=%d: %d/%d chains span 3 zones (bound %d), moved %d, ideal %.0f, short before %d, fresh layout would move %d, max/mean %.3f",
		n, spans[3], p, want, moved, ideal, shortBefore, movedReplicas(before, fresh), ratio)
	require.LessOrEqual(t, float64(moved), 1.15*ideal+float64(shortBefore), "n=%d", n)
	require.LessOrEqual(t, moved, movedReplicas(before, fresh), "n=%d: more moves than a fresh layout", n)
}

// zoneSpans counts the chains by the number of zones each spans.
func zoneSpans(chains [][]string, servers []Server) map[int]int {
	zoneOf := make(map[string]string, len(servers))
	for _, s := range servers {
		zoneOf[s.ID] = s.Zone
	}
	spans := map[int]int{}
	for _, chain := range chains {
		seen := map[string]bool{}
		for _, id := range chain {
			seen[zoneOf[id]] = true
		}
		spans[len(seen)]++
	}
	return spans
}

// fullSpreadBound returns how many of p chains of three can span three
// zones with no server above the cap hi, for servers in three zones: each
// such chain holds one replica in every zone z, which holds at most
// |z|*hi; and a chain in two zones still has a replica outside any one
// zone, so for two zones y and z, 2F + (p-F) <= |y|*hi + |z|*hi.
func fullSpreadBound(servers []Server, p, r int) int {
	size := map[string]int{}
	for _, s := range servers {
		size[s.Zone]++
	}
	if len(size) != 3 {
		return 0
	}
	hi := loadBounds(p, r, len(servers)).hi
	var caps []int
	for _, n := range size {
		caps = append(caps, n*hi)
	}
	bound := p
	for i, c := range caps {
		bound = min(bound, c, c+caps[(i+1)%3]-p)
	}
	return bound
}
