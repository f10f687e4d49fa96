//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// Probing of the failover benchmark: an op with a short deadline starts
// every probeEvery until one succeeds.
const (
	probeEvery   = 5 * time.Millisecond
	probeTimeout = 200 * time.Millisecond
	probeLimit   = 60 * time.Second
)

// failoverTrial is one kill -9 of the benchmark.
type failoverTrial struct {
	at                   time.Time // of the kill
	victim               string
	writeRole, readRole  string // the victim's place in the probed partitions' chains
	writeGap, readGap    time.Duration
	removed, reconverged time.Duration // kill -> out of every chain; restart -> converged
}

// TestBenchFailover measures, on real processes (make bench-failover):
//   - TRIALS kill -9 trials under write load on 5 servers, R=3: the time from
//     the kill to the first successful write and read of a key in a
//     partition of the killed server (probed every 5ms with 200ms
//     deadlines); the server is restarted with its command line and the
//     cluster converges before the next trial;
//   - then, loaded with $ECSKV_E2E_KEYS keys of 1 KiB (default 200,000), the
//     rebalancing rate of `ecs add -n 1` and the p99 latency of paced
//     foreground writes during it, against the p99 of the same load with no
//     rebalancing.
func TestBenchFailover(t *testing.T) {
	if os.Getenv("ECSKV_BENCH") != "1" {
		t.Skip("benchmark: set ECSKV_BENCH=1 (make bench-failover)")
	}
	trials := envInt(t, "TRIALS", 20)
	keys := envInt(t, "ECSKV_E2E_KEYS", 200_000)
	partitions := envInt(t, "ECSKV_BENCH_PARTITIONS", 256)
	c := framework.NewCluster(t, framework.WithServers(5), framework.WithReplicas(3), framework.WithPartitions(partitions))
	ctx, cancel := context.WithTimeout(context.Background(), 28*time.Minute)
	defer cancel()
	cli := c.Client(t)
	probeCli := c.Client(t) // probes get their own connections and ring cache
	h := recordHistory(t, c)

	// Part 1: failover trials.
	bg := startWriteLoad(t, cli, loadConfig{prefix: "bf", workers: 4, hot: 2, hotEvery: 5, valueSize: 1024,
		opTimeout: 5 * time.Second, interval: 5 * time.Millisecond})
	bg.hist = h
	bg.waitAcks(t, 200, 30*time.Second)
	var results []failoverTrial
	for i := range trials {
		res := benchTrial(ctx, t, c, probeCli, h, i)
		results = append(results, res)
		t.Logf("trial %2d: %s kill %s: write window %v (victim %s), read window %v (victim %s); out of chains after %v; converged %v after restart",
			i+1, res.at.Format("15:04:05.000"), res.victim, res.writeGap.Round(time.Millisecond), res.writeRole, res.readGap.Round(time.Millisecond), res.readRole,
			res.removed.Round(time.Millisecond), res.reconverged.Round(time.Millisecond))
	}
	bg.stop(t)
	bg.verify(ctx, t, cli)
	assertCheckClean(t, c, h)

	// Part 2: rebalancing of a loaded cluster.
	d := dataset{prefix: "bench-", n: keys, size: 1024}
	began := time.Now()
	err := framework.ForEach(ctx, d.n, 64, func(ctx context.Context, i int) error {
		_, err := cli.Put(ctx, d.key(i), d.value(i))
		return err
	})
	require.NoError(t, err)
	load := time.Since(began)
	t.Logf("preloaded %d keys of 1 KiB in %v: %.0f keys/s, %.1f MiB/s", d.n, load.Round(time.Millisecond),
		rate(d.n, load), rate(d.n*d.size, load)/(1<<20))
	waitConverged(t, c, time.Minute)

	fg := func(prefix string) loadConfig {
		return loadConfig{prefix: prefix, workers: 4, valueSize: 1024, opTimeout: 10 * time.Second, interval: 10 * time.Millisecond}
	}
	base := startWriteLoad(t, cli, fg("quiet"))
	time.Sleep(15 * time.Second)
	base.stop(t)
	during := startWriteLoad(t, cli, fg("rebalancing"))
	add := runRebalance(ctx, t, c, cli, func(_, after *ringmeta.Ring) int { return len(after.Servers) }, "add", "-n", "1")
	during.stop(t)
	waitConverged(t, c, time.Minute)
	assertCheckClean(t, c, h)

	// Summary.
	var wg, rg []time.Duration
	for _, r := range results {
		wg, rg = append(wg, r.writeGap), append(rg, r.readGap)
	}
	bl, dl := base.latencies(), during.latencies()
	var sb strings.Builder
	fmt.Fprintf(&sb, "failover benchmark: 5 servers, R=3, P=%d, %d trials (p99 of %d samples is their maximum)\n", partitions, trials, trials)
	fmt.Fprintf(&sb, "  write unavailability: median %v  p99 %v  (min %v)\n", pct(wg, 0.5).Round(time.Millisecond), pct(wg, 0.99).Round(time.Millisecond), pct(wg, 0).Round(time.Millisecond))
	fmt.Fprintf(&sb, "  read unavailability:  median %v  p99 %v  (min %v)\n", pct(rg, 0.5).Round(time.Millisecond), pct(rg, 0.99).Round(time.Millisecond), pct(rg, 0).Round(time.Millisecond))
	fmt.Fprintf(&sb, "  ecs add -n 1 with %d keys of 1 KiB: %v, %d replicas copied (%.2fx ideal), %.1f MiB at %.1f MiB/s\n",
		keys, add.took.Round(time.Millisecond), add.moved, float64(add.moved)/add.ideal, add.bytes/(1<<20), add.mibPerSec())
	fmt.Fprintf(&sb, "  foreground writes (4 x 100/s, 1 KiB): quiet p50 %v p99 %v (%d writes, %d failed); during add p50 %v p99 %v (%d writes, %d failed)",
		pct(bl, 0.5), pct(bl, 0.99), len(bl), base.fails.Load(), pct(dl, 0.5), pct(dl, 0.99), len(dl), during.fails.Load())
	t.Log("\n" + sb.String())
	fmt.Println(sb.String())
}

// benchTrial kills a random active server holding replicas, measures the
// write and read windows of its partitions, restarts it and waits for the
// cluster to converge.
func benchTrial(ctx context.Context, t *testing.T, c *framework.Cluster, cli *kvclient.Client, h *history, i int) failoverTrial {
	t.Helper()
	r, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	var candidates []string
	per := replicasPerServer(r)
	for _, s := range r.Servers {
		if s.State == ringmeta.StateActive && per[s.ID] > 0 {
			candidates = append(candidates, s.ID)
		}
	}
	require.NotEmpty(t, candidates)
	victim := candidates[rand.IntN(len(candidates))]
	res := failoverTrial{victim: victim}

	// Writes: a partition the victim heads, else any it is in (a dead member
	// stalls its chain's writes). Reads: one it is the tail of, else any.
	wp, role := pickPartition(r, victim, "head")
	res.writeRole = role
	rp, role := pickPartition(r, victim, "tail")
	res.readRole = role
	wkey := keyInPartition(r, wp, fmt.Sprintf("bench-w%d-", i))
	rkey := keyInPartition(r, rp, fmt.Sprintf("bench-r%d-", i))
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	began := time.Now()
	_, err = cli.Put(pctx, rkey, []byte("read-probe"))
	pcancel()
	if err != nil {
		t.Logf("history of partition %d:\n%s", rp, h.explain(rp, began.Add(-10*time.Second), time.Now()))
		if st, serr := c.StatusE(t); serr == nil {
			t.Logf("status: %s", st.Summary())
		}
		t.Fatalf("trial %d: write the read probe %s before the kill, in a converged cluster: %v (%s)", i+1, rkey, err, where(cli, rkey))
	}

	killedAt := time.Now()
	h.note("trial %d: kill -9 %s", i+1, victim)
	argv := c.KillServer(t, victim)
	type gap struct {
		d  time.Duration
		ok bool
	}
	wch, rch := make(chan gap, 1), make(chan gap, 1)
	go func() {
		d, ok := firstSuccess(killedAt, probeEvery, probeTimeout, probeLimit, func(ctx context.Context) error {
			_, err := cli.Put(ctx, wkey, []byte("write-probe"))
			return err
		})
		wch <- gap{d, ok}
	}()
	go func() {
		d, ok := firstSuccess(killedAt, probeEvery, probeTimeout, probeLimit, func(ctx context.Context) error {
			_, err := cli.Get(ctx, rkey)
			return err
		})
		rch <- gap{d, ok}
	}()
	w, rd := <-wch, <-rch
	require.True(t, w.ok, "trial %d: no write to %s (partition %d, %s of %s) succeeded within %v of the kill", i+1, wkey, wp, res.writeRole, victim, probeLimit)
	require.True(t, rd.ok, "trial %d: no read of %s (partition %d, %s of %s) succeeded within %v of the kill", i+1, rkey, rp, res.readRole, victim, probeLimit)
	res.writeGap, res.readGap, res.at = w.d, rd.d, killedAt
	waitRing(t, cli, removedWithin, func(r *ringmeta.Ring) bool { return !inChains(r, victim) }, "%s out of every chain", victim)
	res.removed = time.Since(killedAt)

	restartedAt := time.Now()
	h.note("trial %d: restart %s", i+1, victim)
	proc := c.RestartServer(t, victim, argv)
	testutil.Eventually(t, removedWithin, 50*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			return false
		}
		s, ok := st.Server(victim)
		return ok && s.State == "active" && s.PID == proc.PID()
	}, "%s active again after its restart", victim)
	waitConvergedAnd(t, c, 2*time.Minute, func(st framework.StatusJSON) string {
		if s, _ := st.Server(victim); s.Replicas() == 0 {
			return victim + " holds no replica yet"
		}
		return ""
	})
	res.reconverged = time.Since(restartedAt)
	return res
}

// pickPartition returns a random partition where id has role, else a random
// one it is a member of, and the role it has there.
func pickPartition(r *ringmeta.Ring, id, role string) (int, string) {
	ps := partitionsOf(r, id, role)
	if len(ps) == 0 {
		ps = partitionsOf(r, id, "member")
		p := ps[rand.IntN(len(ps))]
		ch := r.Chain(p)
		switch ch.Index(id) {
		case 0:
			return p, "head"
		case len(ch.Members) - 1:
			return p, "tail"
		}
		return p, "middle"
	}
	return ps[rand.IntN(len(ps))], role
}
