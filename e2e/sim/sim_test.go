package sim

import (
	"bufio"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagSeeds = flag.Int("sim.seeds", 8, "number of seeds to run")
	flagBase  = flag.Uint64("sim.base", 0, "first seed (0: random, printed)")
	flagSeed  = flag.Uint64("sim.seed", 0, "run this one seed only")
	flagV     = flag.Bool("sim.v", false, "print each seed's fault plan and counters")
)

// TestSim runs seeded simulations; a failing seed prints the command that
// replays it.
func TestSim(t *testing.T) {
	if on := Canaries(); len(on) > 0 {
		t.Logf("canaries built in: %v", on)
	}
	seeds := []uint64{*flagSeed}
	if *flagSeed == 0 {
		base := *flagBase
		if base == 0 {
			base = uint64(time.Now().UnixNano())
		}
		t.Logf("seeds %#x.. (%d); replay one with: make sim SEED=<seed>", base, *flagSeeds)
		seeds = seeds[:0]
		for i := 0; i < *flagSeeds; i++ {
			seeds = append(seeds, base+uint64(i))
		}
	}
	var mu sync.Mutex
	total := map[string]int{}
	ops, started := 0, time.Now()
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%#x", seed), func(t *testing.T) {
				t.Parallel()
				opt := Options{OutDir: os.Getenv("ECSKV_SIM_OUT")}
				if *flagTrace != "" && *flagSeed != 0 {
					f, err := os.Create(*flagTrace)
					if err != nil {
						t.Fatal(err)
					}
					w := bufio.NewWriter(f)
					defer func() { _ = w.Flush(); _ = f.Close() }()
					opt.Trace = w
				}
				res := Run(seed, opt)
				mu.Lock()
				for k, v := range res.Counters {
					total[k] += v
				}
				ops += res.Ops
				mu.Unlock()
				if *flagV || len(res.Failures) > 0 {
					for _, p := range res.Plan {
						t.Logf("plan: %s", p)
					}
					t.Logf("ops %d, events %d, counters %v", res.Ops, res.Events, res.Counters)
				}
				for _, f := range res.Failures {
					t.Errorf("%s", f)
				}
				if len(res.Failures) > 0 {
					t.Logf("replay: make sim SEED=%#x", seed)
				}
			})
		}
	})
	took := time.Since(started)
	t.Logf("%d seeds in %v (%.0f seeds/hour), %d client operations; faults and events: %v",
		len(seeds), took.Round(time.Second), float64(len(seeds))/took.Hours(), ops, faultMix(total))
}

// faultMix lists the fault and probe counters, sorted.
func faultMix(c map[string]int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if strings.HasPrefix(k, "fault-") || strings.HasPrefix(k, "ecs-") || strings.HasPrefix(k, "ring-") {
			out = append(out, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	return strings.Join(out, " ")
}

// TestSimNoFaults: a healthy cluster serves every operation.
func TestSimNoFaults(t *testing.T) {
	res := Run(1, Options{NoFaults: true, FaultTime: 2 * time.Second, LiveTime: 8 * time.Second})
	for _, f := range res.Failures {
		t.Errorf("%s", f)
	}
	ok := 0
	for _, op := range res.History {
		if op.Outcome == 0 {
			ok++
		}
	}
	t.Logf("ops %d ok %d events %d counters %v", res.Ops, ok, res.Events, res.Counters)
	if ok < res.Ops*9/10 {
		t.Fatalf("only %d of %d operations succeeded on a healthy cluster", ok, res.Ops)
	}
}

// TestSimDeterministic: one seed, one run.
func TestSimDeterministic(t *testing.T) {
	for _, seed := range []uint64{3, 11} {
		a, b := Run(seed, Options{}), Run(seed, Options{})
		if a.TraceHash != b.TraceHash || a.Events != b.Events {
			t.Fatalf("seed %d: two runs differ: hash %#x vs %#x, events %d vs %d", seed, a.TraceHash, b.TraceHash, a.Events, b.Events)
		}
	}
}
