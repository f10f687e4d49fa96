package hashring

import (
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
