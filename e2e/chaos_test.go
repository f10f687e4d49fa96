//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
)

// Chaos rounds: each starts a fresh cluster (5 servers, R=3, two ECSes on
// an etcd process of the harness), runs the workload for the round's
// duration under one nemesis, then heals and checks. `make chaos` sets
// ECSKV_CHAOS_ROUNDS and ECSKV_CHAOS_DURATION; `make e2e` runs the short
// default below, one round of each of the nemeses listed in chaosShort.
const (
	chaosServers    = 5
	chaosPartitions = 32
	chaosKeys       = 8
	chaosCounters   = 4                // integer keys for compare-and-swap and increments
	healthyWithin   = 90 * time.Second // recovery after the last fault
	checkTimeout    = 2 * time.Minute  // porcupine's budget per round
)

var chaosShort = []string{"kill-head", "partition-server", "kill-ecs-leader", "restart-etcd", "kill-all", "isolate-control-plane"}

// roundResult is what one round measured.
type roundResult struct {
	nemesis                            string
	ops, faults, failed, unknown, lost int
	violations                         int
	linearizable                       porcupine.CheckResult
	notes                              []string
}

func TestChaos(t *testing.T) {
	rounds, duration, names := chaosSettings(t)
	out := os.Getenv("ECSKV_CHAOS_OUT")
	if out == "" {
		out = framework.TempDir(t, "out")
	}
	var results []roundResult
	for i := range rounds {
		name := names[i%len(names)]
		t.Run(fmt.Sprintf("round%02d-%s", i+1, name), func(t *testing.T) {
			res := chaosRound(t, name, duration, int64(i), out)
			results = append(results, res)
			if res.linearizable == porcupine.Unknown {
				t.Errorf("round %d (%s): porcupine could not decide the history within %v", i+1, name, checkTimeout)
			}
			if res.violations > 0 || res.lost > 0 {
				t.Errorf("round %d (%s): %d violations, %d lost acknowledged writes: %s", i+1, name, res.violations, res.lost,
					strings.Join(res.notes, "; "))
			}
		})
	}
	report := chaosTable(results, rounds, duration)
	t.Logf("chaos report\n%s", report)
	appendChaosReport(t, report)
}

func chaosSettings(t *testing.T) (rounds int, duration time.Duration, names []string) {
	rounds, duration, names = len(chaosShort), 15*time.Second, chaosShort
	if v := os.Getenv("ECSKV_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ECSKV_CHAOS_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
		names = nil
		for _, nm := range framework.Nemeses {
			names = append(names, nm.Name)
		}
	}
	if v := os.Getenv("ECSKV_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 5*time.Second {
			t.Fatalf("ECSKV_CHAOS_DURATION=%q: want a duration of at least 5s", v)
		}
		duration = d
	}
	if v := os.Getenv("ECSKV_CHAOS_NEMESES"); v != "" {
		names = strings.Split(v, ",")
	}
	for _, n := range names {
		if _, ok := framework.NemesisByName(n); !ok {
			t.Fatalf("unknown nemesis %q", n)
		}
	}
	return rounds, duration, names
}

func chaosRound(t *testing.T, name string, duration time.Duration, seed int64, out string) roundResult {
	nem, _ := framework.NemesisByName(name)
	res := roundResult{nemesis: name}
	c := framework.NewChaosCluster(t, framework.ChaosConfig{Servers: chaosServers, Replicas: 3, Partitions: chaosPartitions, ECSes: 2})
	defer c.Close(t) // SIGKILL: quicker than the processes' own graceful cleanup
	t.Logf("chaos: %s", c)
	if err := c.WaitHealthy(t, healthyWithin); err != nil {
		t.Fatalf("before the faults: %v", err)
	}
	wl := framework.WorkloadConfig{Clients: 3, Workers: 2, Keys: chaosKeys, Counters: chaosCounters, Prefix: fmt.Sprintf("chaos-%d-", seed),
		OpTimeout: 5 * time.Second, Think: 10 * time.Millisecond}
	clients := make([]*kvclient.Client, wl.Clients)
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cli, err := c.NewClient(ctx)
		cancel()
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		defer cli.Close()
		clients[i] = cli
	}
	keys := wl.AllKeys()
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var hist *framework.History
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); hist = framework.RunWorkload(ctx, clients, wl) }()

	env := framework.NemesisEnv{Rng: rand.New(rand.NewPCG(uint64(seed), 42)), Client: clients[0], Keys: keys}
	for {
		// A fault, its heal, then recovery before the next one: one fault at
		// a time, as the cluster promises to survive.
		if !sleepCtx(ctx, time.Duration(1000+env.Rng.IntN(2000))*time.Millisecond) {
			break
		}
		what, heal := nem.Inject(t, c, env)
		res.faults++
		t.Logf("chaos: fault %d: %s", res.faults, what)
		sleepCtx(context.Background(), nem.Hold)
		heal()
		if err := c.WaitHealthy(t, healthyWithin); err != nil {
			res.violations++
			res.notes = append(res.notes, fmt.Sprintf("after fault %d (%s): %v", res.faults, what, err))
			break
		}
		if nem.Check == nil {
			continue
		}
		for _, p := range nem.Check(t, c, env) {
			res.violations++
			res.notes = append(res.notes, fmt.Sprintf("after fault %d (%s): %s", res.faults, what, p))
			t.Logf("chaos: after fault %d: %s", res.faults, p)
		}
	}
	wg.Wait()
	c.Net().Heal()
	verifyRound(t, c, clients[0], hist, keys, &res, out)
	return res
}

// verifyRound checks what must hold once the faults stopped: the cluster
// recovers, a write succeeds, `ecs check` is clean, every acknowledged write
// is there and the history is linearizable.
func verifyRound(t *testing.T, c *framework.ChaosCluster, cli *kvclient.Client, hist *framework.History, keys []string, res *roundResult, out string) {
	fail := func(format string, args ...any) {
		res.violations++
		res.notes = append(res.notes, fmt.Sprintf(format, args...))
	}
	if err := c.WaitHealthy(t, healthyWithin); err != nil {
		fail("after the faults: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := cli.Put(ctx, keys[0]+"-final", []byte("final")); err != nil {
		fail("final write of %s, %s: %v", keys[0]+"-final", framework.KeyWhere(cli, keys[0]+"-final"), err)
	}
	cancel()
	var chk framework.CheckJSON
	testutil.WaitUntil(30*time.Second, time.Second, func() bool { chk = c.Check(t); return chk.ExitCode != 2 })
	if chk.ExitCode != 0 {
		fail("after the faults: %s", chk.Summary(8))
	}
	// Final reads join the history, so porcupine checks them too.
	final := map[string]*framework.Op{}
	for _, k := range keys {
		op := framework.Op{Client: 1 << 20, Kind: framework.OpGet, Key: k, Start: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := framework.Apply(ctx, cli, &op)
		cancel()
		op.End = time.Now()
		if err != nil {
			fail("final read of %s, %s: %v", k, framework.KeyWhere(cli, k), err)
			continue
		}
		hist.Add(op)
		final[k] = &op
	}
	ops := hist.Ops()
	res.ops, res.failed, res.unknown = hist.Counts()
	lost := framework.LostWrites(ops, final)
	res.lost = len(lost)
	for _, l := range lost {
		key, _, _ := strings.Cut(l, ":")
		res.notes = append(res.notes, fmt.Sprintf("lost: %s (%s)", l, framework.KeyWhere(cli, key)))
	}
	began := time.Now()
	lin, err := framework.CheckLinearizable(ops, checkTimeout, out, strings.ReplaceAll(t.Name(), "/", "_"))
	res.linearizable = lin.Result
	t.Logf("chaos: %d operations (%d failed, %d unknown), porcupine %s in %v", res.ops, res.failed, res.unknown,
		lin.Result, time.Since(began).Round(time.Millisecond))
	switch {
	case err != nil:
		fail("porcupine visualisation: %v", err)
	case lin.Result == porcupine.Illegal:
		fail("history not linearizable; visualisation: %s", lin.Visualization)
	case lin.Result == porcupine.Unknown:
		t.Logf("chaos: porcupine ran out of time; partial visualisation: %s", lin.Visualization)
	}
	if lin.Visualization != "" {
		t.Logf("chaos: porcupine visualisation written to %s", lin.Visualization)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// chaosRow is one line of the chaos table: rounds summed.
type chaosRow struct {
	rounds, ops, faults, failed, unknown, violations, lost, unchecked int
}

func (w *chaosRow) add(o chaosRow) {
	w.rounds += o.rounds
	w.ops += o.ops
	w.faults += o.faults
	w.failed += o.failed
	w.unknown += o.unknown
	w.violations += o.violations
	w.lost += o.lost
	w.unchecked += o.unchecked
}

func (w chaosRow) format(name string) string {
	return fmt.Sprintf("%-18s %6d %8d %7d %7d %8d %10d %5d %9d\n", name, w.rounds, w.ops, w.faults, w.failed, w.unknown, w.violations, w.lost, w.unchecked)
}

// chaosTable sums the rounds per nemesis.
func chaosTable(results []roundResult, rounds int, duration time.Duration) string {
	var order []string
	rows := map[string]*chaosRow{}
	for _, r := range results {
		if rows[r.nemesis] == nil {
			rows[r.nemesis] = &chaosRow{}
			order = append(order, r.nemesis)
		}
		one := chaosRow{rounds: 1, ops: r.ops, faults: r.faults, failed: r.failed, unknown: r.unknown, violations: r.violations, lost: r.lost}
		if r.linearizable == porcupine.Unknown {
			one.unchecked = 1
		}
		rows[r.nemesis].add(one)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d rounds of %v\n", rounds, duration)
	fmt.Fprintf(&b, "%-18s %6s %8s %7s %7s %8s %10s %5s %9s\n", "NEMESIS", "ROUNDS", "OPS", "FAULTS", "FAILED", "UNKNOWN", "VIOLATIONS", "LOST", "UNCHECKED")
	var tot chaosRow
	for _, n := range order {
		b.WriteString(rows[n].format(n))
		tot.add(*rows[n])
	}
	b.WriteString(tot.format("total"))
	if tot.violations > 0 {
		fmt.Fprintf(&b, "(visualisations of non-linearizable histories: %s)\n", filepath.Clean(os.Getenv("ECSKV_CHAOS_OUT")))
	}
	return b.String()
}
