package hashring

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// peersOf returns, per server, the servers it sends replication messages
// to: each member forwards to its successor and acknowledges to its
// predecessor.
func peersOf(chains [][]string) map[string]map[string]bool {
	peers := map[string]map[string]bool{}
	link := func(a, b string) {
		if peers[a] == nil {
			peers[a] = map[string]bool{}
		}
		peers[a][b] = true
	}
	for _, c := range chains {
		for i := 1; i < len(c); i++ {
			link(c[i-1], c[i])
			link(c[i], c[i-1])
		}
	}
	return peers
}

// roleCounts returns the most heads and the most tails of any server.
func roleCounts(chains [][]string) (heads, tails int) {
	h, t := map[string]int{}, map[string]int{}
	for _, c := range chains {
		h[c[0]]++
		t[c[len(c)-1]]++
	}
	for _, v := range h {
		heads = max(heads, v)
	}
	for _, v := range t {
		tails = max(tails, v)
	}
	return heads, tails
}

// TestInitialNeighbors: a new cluster's chains are runs of ring
// neighbours, so every server replicates with two peers whatever N; loads,
// heads and tails are the mean rounded up at most; with three equal zones
// every chain spans them all and the peers stay two.
func TestInitialNeighbors(t *testing.T) {
	cases := []struct {
		n, p  int
		zones []string
	}{
		{n: 3, p: 1024}, {n: 4, p: 1024}, {n: 5, p: 1024}, {n: 7, p: 1024},
		{n: 10, p: 1024}, {n: 33, p: 1024}, {n: 100, p: 1024},
		{n: 1000, p: 1024}, {n: 1000, p: 16384}, {n: 8, p: 4},
		{n: 12, p: 1024, zones: []string{"a", "b", "c"}},
		{n: 99, p: 1024, zones: []string{"a", "b", "c"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n=%d,p=%d,zones=%d", tc.n, tc.p, len(tc.zones)), func(t *testing.T) {
			servers := makeServers(tc.n, tc.zones...)
			chains, err := Initial(servers, tc.p, 3)
			require.NoError(t, err)
			requireValid(t, chains, servers, 3)
			for s, ps := range peersOf(chains) {
				require.LessOrEqual(t, len(ps), 2, "server %s replicates with %d peers", s, len(ps))
			}
			top := (tc.p + tc.n - 1) / tc.n
			heads, tails := roleCounts(chains)
			require.LessOrEqual(t, heads, top, "heads")
			require.LessOrEqual(t, tails, top, "tails")
			most := 0
			for _, l := range Load(chains) {
				most = max(most, l)
			}
			require.LessOrEqual(t, most, (3*tc.p+tc.n-1)/tc.n, "replicas")
			if len(tc.zones) == 3 {
				requireZones(t, chains, servers, 3)
			}
			again, err := Rebalance(chains, servers, 3)
			require.NoError(t, err)
			require.Equal(t, chains, again, "Rebalance of a fresh layout must be a no-op")
		})
	}
}

// TestInitialNeighborsScatterDiffers: WithTokens keeps the scattered layout,
// whose servers replicate with many peers; the default gives two.
func TestInitialNeighborsScatterDiffers(t *testing.T) {
	servers := makeServers(10)
	scattered, err := Initial(servers, 1024, 3, WithTokens(0))
	require.NoError(t, err)
	most := 0
	for _, ps := range peersOf(scattered) {
		most = max(most, len(ps))
	}
	require.Greater(t, most, 2)
}

// maxPeers returns the most peers any server replicates with.
func maxPeers(chains [][]string) int {
	most := 0
	for _, ps := range peersOf(chains) {
		most = max(most, len(ps))
	}
	return most
}

// TestFailoverFromNeighbours: when a server of runs of neighbours fails,
// Rebalance copies about the P*R/N replicas it must (the least loaded
// server first, as for other layouts, took up to 1.09x that), and logs
// how many peers servers then have.
func TestFailoverFromNeighbours(t *testing.T) {
	for _, n := range []int{5, 8, 20, 100} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			servers := makeServers(n)
			chains, err := Initial(servers, 1024, 3)
			require.NoError(t, err)
			failed, err := Rebalance(chains, without(servers, servers[n/2].ID), 3)
			require.NoError(t, err)
			requireValid(t, failed, without(servers, servers[n/2].ID), 3)
			moved, ideal := movedReplicas(chains, failed), 3*1024/n
			added, err := Rebalance(chains, append(servers, Server{ID: "new"}), 3)
			require.NoError(t, err)
			t.Logf("moved %d (ideal %d); most peers after the failure %d, after a join %d", moved, ideal, maxPeers(failed), maxPeers(added))
			require.LessOrEqual(t, float64(moved), 1.05*float64(ideal))
		})
	}
}
