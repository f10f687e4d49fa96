package ecs

import (
	"context"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// fakeAdmin answers Digest with 10 keys per partition asked for; the
// other calls are not the controller's.
type fakeAdmin struct{ kvpb.AdminClient }

func (fakeAdmin) Digest(_ context.Context, in *kvpb.DigestRequest, _ ...grpc.CallOption) (*kvpb.DigestResponse, error) {
	out := &kvpb.DigestResponse{}
	for _, p := range in.GetPartitions() {
		out.Partitions = append(out.Partitions, &kvpb.PartitionDigest{Partition: p, Keys: 10})
	}
	return out, nil
}

func noAdmin(string) (kvpb.AdminClient, io.Closer, error) { return fakeAdmin{}, io.NopCloser(nil), nil }

func chain(v uint64, learner string, members ...string) ringmeta.Chain {
	return ringmeta.Chain{Members: members, Version: v, Learner: learner}
}

func seedRing(epoch uint64, r int, servers []string, chains ...ringmeta.Chain) *ringmeta.Ring {
	ring := &ringmeta.Ring{Epoch: epoch, Partitions: len(chains), Replicas: r, Chains: chains,
		Limits: ringmeta.Limits{MaxKeyBytes: 1024, MaxValueBytes: 1024}}
	for _, id := range servers {
		ring.Servers = append(ring.Servers, ringmeta.Server{ID: id, Addr: addr(id), State: ringmeta.StateActive})
	}
	return ring
}

func serverState(r *ringmeta.Ring, id string) ringmeta.State {
	s, _ := r.Server(id)
	return s.State
}

func TestFailoverOnMemberKeyDeleted(t *testing.T) {
	tc := newTestCluster(t, testConfig(8, 3, 8))
	tc.setAutoReady(false) // keep learners in place: this test looks at one epoch
	srv := []string{"s1", "s2", "s3", "s4"}
	tc.seed(seedRing(10, 3, srv,
		chain(1, "", "s1", "s2", "s3"),
		chain(1, "", "s1"), // the only copy: stays, even when s1 is down
		chain(2, "", "s2", "s1", "s4"),
		chain(5, "s2", "s3", "s4", "s1"), // s1 is the tail: the learner goes too
		chain(3, "s1", "s2", "s3", "s4"), // s1 is the learner
		chain(1, "", "s4", "s1"),
		chain(1, "", "s1", "s2"),
		chain(1, "", "s2", "s3", "s4"),
	))
	tc.register(srv...)
	tc.start()
	before := tc.waitRing("controller running", func(r *ringmeta.Ring) bool { return r.Epoch >= 10 })
	require.Equal(t, ringmeta.StateActive, serverState(before, "s1"))

	tc.kill("s1")
	tc.waitRing("s1 down", func(r *ringmeta.Ring) bool { return serverState(r, "s1") == ringmeta.StateDown })
	h := tc.history()
	i := slices.IndexFunc(h, func(r *ringmeta.Ring) bool { return serverState(r, "s1") == ringmeta.StateDown })
	prev, down := h[i-1], h[i]
	require.Equal(t, ringmeta.StateActive, serverState(prev, "s1"))
	for p, ch := range down.Chains {
		require.NotEqual(t, "s1", ch.Learner, "partition %d", p)
		if slices.Equal(ch.Members, []string{"s1"}) {
			continue
		}
		require.NotContains(t, ch.Members, "s1", "partition %d: the same epoch removes s1 everywhere", p)
		if prev.Chains[p].Index("s1") >= 0 || prev.Chains[p].Learner == "s1" {
			require.Equal(t, prev.Chains[p].Version+1, ch.Version, "partition %d", p)
		}
	}
	require.Equal(t, []string{"s1"}, down.Chains[1].Members, "the last copy stays")
	require.Equal(t, ringmeta.Chain{Members: []string{"s3", "s4"}, Version: 6}, down.Chains[3], "tail gone: learner cleared")
	require.Equal(t, ringmeta.Chain{Members: []string{"s2", "s3", "s4"}, Version: 4}, down.Chains[4])
	tc.checkContract(8)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		return metricValue(t, tc.ctl.gauges.failovers.WithLabelValues(causeLease)) == 1
	}, "failover metric")
	require.Equal(t, 1.0, metricValue(t, tc.ctl.gauges.failoverSeconds), "one failover timed")
}

func TestFailoverOnProbesAndRecovery(t *testing.T) {
	tc := newTestCluster(t, testConfig(4, 3, 8))
	tc.register("s1", "s2", "s3")
	tc.start()
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 4 })

	tc.health.set(addr("s2"), true)
	down := tc.waitRing("s2 down", func(r *ringmeta.Ring) bool { return serverState(r, "s2") == ringmeta.StateDown })
	for p, ch := range down.Chains {
		require.Equal(t, []string{"s1", "s3"}, sortedCopy(ch.Members), "partition %d", p)
	}
	tc.health.set(addr("s2"), false)
	tc.waitRing("s2 back in every chain", func(r *ringmeta.Ring) bool {
		for _, ch := range r.Chains {
			if len(ch.Members) != 3 || ch.Learner != "" {
				return false
			}
		}
		return serverState(r, "s2") == ringmeta.StateActive
	})
	tc.checkContract(8)
	require.Equal(t, 1.0, metricValue(t, tc.ctl.gauges.failovers.WithLabelValues(causeProbe)))
}

// TestNoProbeFailoverWhenECSIsolated: when the ECS loses every server's
// probes at once while their leases live (the ECS cut from the servers, not
// from etcd; found by the chaos test's partition-ecs nemesis), it must not
// strip every chain down to one member; a single server failing its probes
// is still failed over.
func TestNoProbeFailoverWhenECSIsolated(t *testing.T) {
	tc := newTestCluster(t, testConfig(8, 3, 8))
	srv := []string{"s1", "s2", "s3", "s4", "s5"}
	tc.register(srv...)
	tc.start()
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 8 })
	time.Sleep(2 * tc.cfg.ProbeInterval) // every loop has heard its server

	for _, id := range srv {
		tc.health.set(addr(id), true)
	}
	// Well past the time a verdict takes: no server may go down.
	deadline := time.Now().Add(silence + 10*tc.cfg.ProbeInterval)
	for time.Now().Before(deadline) {
		for _, r := range tc.history() {
			for _, id := range srv {
				require.NotEqual(t, ringmeta.StateDown, serverState(r, id), "epoch %d: %s failed over while the ECS was isolated", r.Epoch, id)
			}
		}
		time.Sleep(tc.cfg.ProbeInterval)
	}
	for _, id := range srv {
		tc.health.set(addr(id), false)
	}
	time.Sleep(3 * tc.cfg.ProbeInterval)
	tc.health.set(addr("s3"), true)
	tc.waitRing("s3 down", func(r *ringmeta.Ring) bool { return serverState(r, "s3") == ringmeta.StateDown })
	tc.checkContract(8)
}

// TestUnsyncedTailDemotedWhenPredecessorFails: a learner was promoted to
// tail and has not reported catching up with the old tail when the old
// tail fails. It may lack writes the old tail committed that no other
// member can resend (kvserver TestChainOldTailFailsDuringPromotionSync), so
// the failover makes it the learner again, to copy the partition afresh.
func TestUnsyncedTailDemotedWhenPredecessorFails(t *testing.T) {
	tc := newTestCluster(t, testConfig(1, 3, 8))
	tc.setAutoReady(false)
	srv := []string{"s1", "s2", "s3", "s4"}
	tc.seed(seedRing(10, 3, srv, chain(1, "s4", "s1", "s2", "s3")))
	r := tc.waitRing("seeded", func(r *ringmeta.Ring) bool { return r.Epoch == 10 })
	tc.register(srv...) // each reports epoch 10
	tc.start()
	tc.lag("s4", true) // once promoted it does not report synced: still syncing
	_, err := tc.cli.Put(context.Background(), etcdkeys.Ready(tc.cfg.Cluster, "s4", 0), strconv.FormatUint(r.Chains[0].Version, 10))
	require.NoError(t, err)
	r = tc.waitRing("s4 promoted", func(r *ringmeta.Ring) bool {
		return len(r.Chains[0].Members) == 4 && r.Chains[0].Tail() == "s4"
	})
	require.Equal(t, []core.Mark{{ID: "s4", Version: r.Chains[0].Version}}, tc.marks(0), "marked in the promoting epoch")
	tc.kill("s3")
	r = tc.waitRing("s3 stripped", func(r *ringmeta.Ring) bool { return r.Chains[0].Index("s3") < 0 })
	require.Equal(t, []string{"s1", "s2"}, r.Chains[0].Members, "the unsynced tail leaves the chain with s3")
	require.Equal(t, "s4", r.Chains[0].Learner, "and copies the partition again")
	require.Empty(t, tc.marks(0), "a learner has no mark")
	_, err = tc.cli.Put(context.Background(), etcdkeys.Ready(tc.cfg.Cluster, "s4", 0), strconv.FormatUint(r.Chains[0].Version, 10))
	require.NoError(t, err)
	r = tc.waitRing("s4 promoted again", func(r *ringmeta.Ring) bool {
		return r.Chains[0].Tail() == "s4" && r.Chains[0].Learner == ""
	})
	require.Equal(t, []core.Mark{{ID: "s4", Version: r.Chains[0].Version}}, tc.marks(0))
	tc.lag("s4", false) // caught up: reports synced
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return len(tc.marks(0)) == 0 }, "mark cleared")
	tc.checkContract(8)
}

func TestRestartLeavesChains(t *testing.T) {
	tc := newTestCluster(t, testConfig(4, 2, 8))
	tc.setAutoReady(false)
	tc.register("s1", "s2", "s3")
	tc.start()
	laid := tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 4 })
	require.True(t, holds(laid, "s2"))

	tc.register("s2") // a new incarnation, before any probe or lease noticed
	r := tc.waitRing("s2 out of its chains", func(r *ringmeta.Ring) bool {
		for _, ch := range r.Chains {
			if ch.Index("s2") >= 0 {
				return false
			}
		}
		return true
	})
	require.Equal(t, ringmeta.StateActive, serverState(r, "s2"), "a restarted server stays active")
	tc.checkContract(8)
}

func TestPromotionViaReadyKey(t *testing.T) {
	tc := newTestCluster(t, testConfig(1, 3, 8))
	tc.setAutoReady(false)
	srv := []string{"s1", "s2", "s3"}
	tc.seed(seedRing(3, 3, srv, chain(4, "s3", "s1", "s2")))
	tc.register(srv...)
	tc.start()
	tc.waitRing("controller running", func(r *ringmeta.Ring) bool { return r.Epoch >= 3 })
	ctx := context.Background()
	cl := tc.cfg.Cluster

	// Stale: the wrong version, and a server that is no learner.
	_, err := tc.cli.Put(ctx, etcdkeys.Ready(cl, "s3", 0), "3")
	require.NoError(t, err)
	_, err = tc.cli.Put(ctx, etcdkeys.Ready(cl, "s2", 0), "4")
	require.NoError(t, err)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return readyKeys(t, tc) == 0 }, "stale ready keys deleted")
	require.Equal(t, chain(4, "s3", "s1", "s2"), tc.latest().Chains[0])

	_, err = tc.cli.Put(ctx, etcdkeys.Ready(cl, "s3", 0), "4")
	require.NoError(t, err)
	r := tc.waitRing("s3 promoted", func(r *ringmeta.Ring) bool { return r.Chains[0].Learner == "" })
	require.Equal(t, chain(5, "", "s1", "s2", "s3"), r.Chains[0])
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return readyKeys(t, tc) == 0 }, "ready key deleted")
	tc.checkContract(8)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		return metricValue(t, tc.ctl.gauges.keysMoved) == 10
	}, "keys moved counted")
}

func readyKeys(t *testing.T, tc *testCluster) int64 {
	resp, err := tc.cli.Get(context.Background(), etcdkeys.ReadyPrefix(tc.cfg.Cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return resp.Count
}

func TestPlannerKeepsMaxMoves(t *testing.T) {
	tc := newTestCluster(t, testConfig(32, 2, 2))
	tc.register("s1", "s2", "s3")
	tc.start()
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 32 })
	tc.register("s4", "s5")
	st := waitBalanced(t, tc, func(st *opclient.Status) bool { return activeServers(st) == 5 })
	for _, s := range st.Servers {
		require.Positive(t, s.Roles["head"]+s.Roles["middle"]+s.Roles["tail"], "server %s holds replicas", s.ID)
	}
	require.Positive(t, st.Moves.Done)
	require.Equal(t, st.Moves.Done, st.Moves.Total)
	require.Positive(t, st.Moves.KeysMoved)
	tc.checkContract(2)
}

func waitBalanced(t *testing.T, tc *testCluster, done func(*opclient.Status) bool) *opclient.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := opclient.WaitBalanced(ctx, tc.cli, tc.cfg.Cluster, done, nil)
	require.NoError(t, err)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return tc.epoch() >= st.Epoch }, "the recorder catches up")
	return st
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// metricValue reads a counter or gauge, or a histogram's sample count.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	require.NoError(t, (<-ch).Write(&m))
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("unsupported metric %v", &m)
	return 0
}

func activeServers(st *opclient.Status) int {
	n := 0
	for _, s := range st.Servers {
		if s.State == string(ringmeta.StateActive) {
			n++
		}
	}
	return n
}

// TestInitialServersWaits: with --initial-servers 5 the first ring waits
// until five servers are active (servers that start one by one on their
// own hosts), reports the wait once per count, and then lays out runs of
// neighbours over all five.
func TestInitialServersWaits(t *testing.T) {
	cfg := testConfig(16, 3, 8)
	cfg.InitialServers = 5
	tc := newTestCluster(t, cfg)
	tc.register("s1", "s2", "s3")
	tc.start()
	waited := func(detail string) bool {
		for _, e := range tc.ctl.events.list() {
			if e.Kind == "layout waits" && e.Detail == detail {
				return true
			}
		}
		return false
	}
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return waited("3 of 5 servers active") }, "the wait reported")
	if r := tc.latest(); r != nil {
		require.Empty(t, r.Chains, "laid out before five servers were active")
	}

	tc.register("s4", "s5")
	r := tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 16 })
	peers := map[string]map[string]bool{}
	for _, ch := range r.Chains {
		require.Len(t, ch.Members, 3)
		for i := 1; i < len(ch.Members); i++ {
			a, b := ch.Members[i-1], ch.Members[i]
			for _, pair := range [][2]string{{a, b}, {b, a}} {
				if peers[pair[0]] == nil {
					peers[pair[0]] = map[string]bool{}
				}
				peers[pair[0]][pair[1]] = true
			}
		}
	}
	require.Len(t, peers, 5, "every server holds replicas")
	for s, ps := range peers {
		require.Len(t, ps, 2, "server %s replicates with %v", s, ps)
	}
}
