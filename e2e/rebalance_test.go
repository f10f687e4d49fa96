//go:build e2e

package e2e

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// defaultE2EKeys is N of TestAddRemoveUnderLoad unless $ECSKV_E2E_KEYS
	// says otherwise (make bench-failover uses 200,000).
	defaultE2EKeys = 20_000
	// maxMoveRatio bounds the replicas a reconfiguration copies, over the
	// ideal P*R/N (DESIGN §2: minimal changes, no reshuffle).
	maxMoveRatio = 1.15
	// rebalanceTimeout bounds one `ecs add` or `ecs remove` (its --timeout).
	rebalanceTimeout = 10 * time.Minute
)

// rebalanceLoad is the foreground load during add and remove: 4 writers of
// 1 KiB values, each paced at one write per 5ms; no write may fail.
func rebalanceLoad(prefix string) loadConfig {
	return loadConfig{prefix: prefix, workers: 4, hot: 2, hotEvery: 5, valueSize: 1024,
		opTimeout: 10 * time.Second, interval: 5 * time.Millisecond}
}

// preload writes d with many writers and logs the rate.
func preload(ctx context.Context, t *testing.T, cli *kvclient.Client, d dataset) {
	t.Helper()
	elapsed := putAll(ctx, t, cli, d, 32)
	t.Logf("preloaded %d keys of %d B in %v: %.0f keys/s, %.1f MiB/s", d.n, d.size, elapsed.Round(time.Millisecond),
		rate(d.n, elapsed), rate(d.n*d.size, elapsed)/(1<<20))
}

// rebalanceResult is what one `ecs add` or `ecs remove` did.
type rebalanceResult struct {
	took          time.Duration
	before, after *ringmeta.Ring
	moved         int     // replicas added to chains
	ideal         float64 // P*R/N
	bytes         float64 // snapshot bytes the learners received
}

func (r rebalanceResult) mibPerSec() float64 { return r.bytes / (1 << 20) / r.took.Seconds() }

// runRebalance runs `ecs <args>` as a process (its progress lines go to the
// test log), requires exit 0, and measures the moves it caused. idealN is the
// N of the ideal P*R/N.
func runRebalance(ctx context.Context, t *testing.T, c *framework.Cluster, cli *kvclient.Client, idealN func(before, after *ringmeta.Ring) int, args ...string) rebalanceResult {
	t.Helper()
	before, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	scraped := transferBytes(t, c.Status(t))
	args = append(args, "--etcd-endpoints", c.EtcdEndpoint(), "--timeout", rebalanceTimeout.String())
	began := time.Now()
	p := framework.StartProcess(t, framework.ProcessSpec{Name: "ecs " + args[0], Path: c.Bin(framework.ECSBin), Args: args})
	code, ok := p.Wait(rebalanceTimeout + 30*time.Second)
	took := time.Since(began)
	if !ok {
		p.Kill(t)
		t.Fatalf("ecs %v still running after %v", args, rebalanceTimeout+30*time.Second)
	}
	require.Equal(t, 0, code, "ecs %s exit status; stderr:\n%v", args[0], p.Stderr())
	c.Track(t)
	after, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	st := c.Status(t)
	res := rebalanceResult{took: took, before: before, after: after, moved: replicasAdded(before, after),
		bytes: bytesReceived(scraped, transferBytes(t, st))}
	n := idealN(before, after)
	res.ideal = float64(after.Partitions*after.Replicas) / float64(n)
	t.Logf("ecs %s: exit 0 after %v; ring epoch %d -> %d; %d replicas copied, ideal P*R/N = %d*%d/%d = %.1f (ratio %.2f); "+
		"%.1f MiB received by learners, %.1f MiB/s; replicas per server before %v after %v",
		args[0], took.Round(time.Millisecond), before.Epoch, after.Epoch, res.moved, after.Partitions, after.Replicas, n,
		res.ideal, float64(res.moved)/res.ideal, res.bytes/(1<<20), res.mibPerSec(), replicasPerServer(before), replicasPerServer(after))
	assert.LessOrEqual(t, float64(res.moved), maxMoveRatio*res.ideal,
		"replicas copied by `ecs %s` over %.2fx the ideal P*R/N", args[0], maxMoveRatio)
	assertBalanced(t, after)
	return res
}

// assertBalanced checks DESIGN §2's bound: the most loaded server holds at
// most 1.10x the mean number of partition replicas (rounded up).
func assertBalanced(t *testing.T, r *ringmeta.Ring) {
	t.Helper()
	per := replicasPerServer(r)
	mean := float64(r.Partitions*r.Replicas) / float64(len(per))
	most := slices.Max(slices.Collect(maps.Values(per)))
	assert.LessOrEqual(t, float64(most), float64(int(1.10*mean+0.999)), "most loaded server over 1.10x the mean %.1f: %v", mean, per)
}

// TestAddRemoveUnderLoad adds a server to a loaded 5-server cluster with
// `ecs add` and then removes one with `ecs remove`, while writers run: no
// write fails, the moves stay near the minimum, and the replicas agree.
func TestAddRemoveUnderLoad(t *testing.T) {
	n := envInt(t, "ECSKV_E2E_KEYS", defaultE2EKeys)
	c := framework.NewCluster(t, framework.WithServers(5), framework.WithReplicas(3), framework.WithPartitions(128))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cli := c.Client(t)
	h := recordHistory(t, c)
	d := dataset{prefix: "ar-", n: n, size: 1024}
	preload(ctx, t, cli, d)

	// ecs add -n 1: s6 joins.
	l := startWriteLoad(t, cli, rebalanceLoad("ar-add"))
	l.hist = h
	l.waitAcks(t, 100, 30*time.Second)
	add := runRebalance(ctx, t, c, cli, func(_, after *ringmeta.Ring) int { return len(after.Servers) }, "add", "-n", "1")
	l.stop(t)
	assert.Zero(t, l.fails.Load(), "writes failed during `ecs add`: %v", l.errors())
	added := slices.DeleteFunc(slices.Collect(maps.Keys(replicasPerServer(add.after))), func(id string) bool {
		return slices.ContainsFunc(add.before.Servers, func(s ringmeta.Server) bool { return s.ID == id })
	})
	require.Equal(t, []string{"s6"}, added, "servers holding replicas after `ecs add -n 1` that were not in the ring before")
	st, _ := waitConverged(t, c, 30*time.Second)
	require.Len(t, st.Servers, 6)
	assertActive(t, st, "s6")
	assertChainsFull(t, add.after)
	assertCheckClean(t, c, h)

	// ecs remove s2: drained, stopped, gone.
	victim := "s2"
	vpid := c.ServerPID(victim)
	require.Positive(t, vpid, "pid of %s", victim)
	l2 := startWriteLoad(t, cli, rebalanceLoad("ar-rm"))
	l2.hist = h
	l2.waitAcks(t, 100, 30*time.Second)
	rm := runRebalance(ctx, t, c, cli, func(before, _ *ringmeta.Ring) int { return len(before.Servers) }, "remove", victim)
	l2.stop(t)
	assert.Zero(t, l2.fails.Load(), "writes failed during `ecs remove`: %v", l2.errors())
	assert.False(t, inChains(rm.after, victim), "%s still in a chain after `ecs remove`", victim)
	var last framework.StatusJSON
	gone := testutil.WaitUntil(30*time.Second, 200*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		last = st
		_, listed := st.Server(victim)
		return err == nil && !listed
	})
	assert.True(t, gone, "%s gone from `ecs status` within 30s of `ecs remove`; last: %s", victim, last.Summary())
	testutil.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool { return !framework.Alive(vpid) },
		"%s (pid %d) exits after `ecs remove`", victim, vpid)
	st, _ = waitConverged(t, c, 30*time.Second)
	assert.Len(t, st.Servers, 5)
	assertChainsFull(t, rm.after)
	assertCheckClean(t, c, h)

	readAll(ctx, t, cli, d, 16)
	l.verify(ctx, t, cli)
	l2.verify(ctx, t, cli)
	t.Logf("summary: N=%d keys of 1 KiB; add: %v, %d replicas (%.2fx ideal), %.1f MiB/s; remove: %v, %d replicas (%.2fx ideal), %.1f MiB/s",
		n, add.took.Round(time.Millisecond), add.moved, float64(add.moved)/add.ideal, add.mibPerSec(),
		rm.took.Round(time.Millisecond), rm.moved, float64(rm.moved)/rm.ideal, rm.mibPerSec())
}
