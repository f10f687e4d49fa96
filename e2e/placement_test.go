//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestFirstLayoutNeighbours: the ring `ecs start` publishes for five servers
// lays chains out as runs of ring neighbours, so each server replicates with
// two peers (forwards to the next, acknowledgements to the one before), and
// heads and tails are even from the start.
func TestFirstLayoutNeighbours(t *testing.T) {
	const servers, partitions = 5, 1024
	c := framework.NewCluster(t, framework.WithServers(servers), framework.WithReplicas(3), framework.WithPartitions(partitions))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ring, err := c.Client(t).RefreshRing(ctx)
	require.NoError(t, err)
	require.Len(t, ring.Chains, partitions)
	peers := map[string]map[string]bool{}
	link := func(a, b string) {
		if peers[a] == nil {
			peers[a] = map[string]bool{}
		}
		peers[a][b] = true
	}
	heads, tails := map[string]int{}, map[string]int{}
	for p, ch := range ring.Chains {
		require.Len(t, ch.Members, 3, "partition %d", p)
		for i := 1; i < len(ch.Members); i++ {
			link(ch.Members[i-1], ch.Members[i])
			link(ch.Members[i], ch.Members[i-1])
		}
		heads[ch.Head()]++
		tails[ch.Tail()]++
	}
	require.Len(t, peers, servers)
	for s, ps := range peers {
		require.Len(t, ps, 2, "server %s replicates with %v", s, ps)
	}
	top := (partitions + servers - 1) / servers
	for s := range peers {
		require.LessOrEqual(t, heads[s], top, "heads of %s: %v", s, heads)
		require.LessOrEqual(t, tails[s], top, "tails of %s: %v", s, tails)
	}
	t.Logf("epoch %d; heads %v, tails %v", ring.Epoch, heads, tails)
}
