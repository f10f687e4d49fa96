package ecs

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// marks reads partition p's unsynced marks from the state in etcd.
func (tc *testCluster) marks(p int) []core.Mark {
	tc.t.Helper()
	_, _, st, err := ctlstate.Load(context.Background(), tc.cli, tc.cfg.Cluster)
	require.NoError(tc.t, err)
	return st.Unsynced[p]
}

func syncedKeys(t *testing.T, tc *testCluster) int64 {
	t.Helper()
	resp, err := tc.cli.Get(context.Background(), etcdkeys.SyncedPrefix(tc.cfg.Cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

// requireNeverHead asserts that id headed partition p in none of the rings
// h: the rings published while id was promoted and had not reported synced.
func requireNeverHead(t *testing.T, h []*ringmeta.Ring, p int, id string) {
	t.Helper()
	for _, r := range h {
		if len(r.Chains) > p {
			require.NotEqual(t, id, r.Chains[p].Head(), "epoch %d: %v", r.Epoch, r.Chains[p])
		}
	}
}

// TestMoveR1WaitsForSynced: an R=1 move [A] -> [A,B] -> [B] removes A only
// once B reported synced; before that, however long, B never holds the
// partition alone.
func TestMoveR1WaitsForSynced(t *testing.T) {
	tc := newTestCluster(t, testConfig(1, 1, 8))
	tc.seed(seedRing(5, 1, []string{"s1", "s2"}, chain(1, "", "s1")))
	tc.register("s1", "s2")
	tc.lag("s2", true)
	tc.start()
	elect(t, tc)
	res, err := request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: "s1"})
	require.NoError(t, err)
	require.True(t, res.OK)
	r := tc.waitRing("s2 promoted", func(r *ringmeta.Ring) bool { return r.Chains[0].Tail() == "s2" })
	require.Equal(t, []string{"s1", "s2"}, r.Chains[0].Members)
	require.Equal(t, []core.Mark{{ID: "s2", Version: r.Chains[0].Version}}, tc.marks(0))

	time.Sleep(time.Second) // many passes, and epoch reports from both
	require.Equal(t, r.Epoch, tc.epoch(), "no step while s2 has not reported synced")

	// A stale report (an older version) clears nothing and is deleted.
	_, err = tc.cli.Put(context.Background(), etcdkeys.Synced(tc.cfg.Cluster, "s2", 0), strconv.FormatUint(r.Chains[0].Version-1, 10))
	require.NoError(t, err)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return syncedKeys(t, tc) == 0 }, "stale synced key deleted")
	require.Len(t, tc.marks(0), 1)
	requireNeverHead(t, tc.history(), 0, "s2")

	tc.lag("s2", false)
	tc.waitRing("s1 left", func(r *ringmeta.Ring) bool { return slices.Equal(r.Chains[0].Members, []string{"s2"}) })
	require.Empty(t, tc.marks(0))
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return syncedKeys(t, tc) == 0 }, "synced key deleted")
	tc.checkContract(8)
}

// TestMarksSurviveTakeover is bug 1 across a change of ECS leader: [A,B]
// with learner L; L is promoted and has not reported synced when the leader
// ECS stops; a new leader takes over, and then A and B lose etcd. The new
// leader knows L is unsynced from etcd: it keeps B (down) in front of L
// rather than publish [L] alone, and drops B only once L reports synced.
func TestMarksSurviveTakeover(t *testing.T) {
	tc := newTestCluster(t, testConfig(1, 2, 8))
	tc.setAutoReady(false)
	tc.seed(seedRing(10, 2, []string{"a", "b", "l"}, chain(3, "l", "a", "b")))
	tc.register("a", "b", "l")
	tc.lag("l", true)
	stop := tc.start()
	tc.waitRing("seeded", func(r *ringmeta.Ring) bool { return r.Epoch >= 10 })
	_, err := tc.cli.Put(context.Background(), etcdkeys.Ready(tc.cfg.Cluster, "l", 0), "3")
	require.NoError(t, err)
	promoted := tc.waitRing("l promoted", func(r *ringmeta.Ring) bool { return r.Chains[0].Tail() == "l" })
	require.Equal(t, []string{"a", "b", "l"}, promoted.Chains[0].Members)
	require.Equal(t, []core.Mark{{ID: "l", Version: 4}}, tc.marks(0))
	stop()

	tc.start() // the new leader
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, promoted.Epoch, tc.epoch(), "the new leader takes no step on the frozen partition (R=2 wants a member out)")
	tc.kill("a")
	tc.kill("b")
	r := tc.waitRing("a and b down", func(r *ringmeta.Ring) bool {
		return serverState(r, "a") == ringmeta.StateDown && serverState(r, "b") == ringmeta.StateDown
	})
	require.Equal(t, []string{"b", "l"}, r.Chains[0].Members, "b, down, stays in front of the unsynced l")
	require.Equal(t, []core.Mark{{ID: "l", Version: 4}}, tc.marks(0))
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, []string{"b", "l"}, tc.latest().Chains[0].Members, "the partition waits for b")
	requireNeverHead(t, tc.history(), 0, "l")

	tc.lag("l", false) // l reports synced: it holds every acknowledged write
	tc.waitRing("b dropped", func(r *ringmeta.Ring) bool { return slices.Equal(r.Chains[0].Members, []string{"l"}) })
	require.Empty(t, tc.marks(0))
	tc.checkContract(8)
}
