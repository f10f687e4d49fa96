package sim

import (
	"bufio"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// knownCanaries are the canaries of the code (one build tag simcanary_<name>
// each); testdata/canaries.txt must name a reproduction for every one.
var knownCanaries = []string{"restart", "dedupevict", "ttlskew", "leaseorder", "dupholdback", "twoheads", "unsyncedhead", "noprobe", "tailsynced", "snapunsynced", "noreorderprobe", "narrowprobe", "casnovalue", "reportonce", "leanoverwrite", "readinflight", "priorfloor", "retrywindow"}

// scenarios are the scripted reproductions canaries.txt may name, by name:
// the options of one run (a Script, usually with NoFaults).
var scenarios = map[string]func() Options{}

// canaryCase is one line of testdata/canaries.txt:
//
//	<tag> seed=<seed>|nocounters=<seed>|scenario=<name>[/<seed>] <signature>
//
// nocounters runs the seed with the workload of before the counters
// (Options.Counters -1), whose runs the seeds found then still replay.
//
// With the canary built in (-tags simcanary_<tag>) the run must fail with a
// failure line containing signature; without any canary it must pass.
type canaryCase struct {
	tag, run, signature string
	seed                uint64
	opt                 Options
}

func loadCanaries(t *testing.T) []canaryCase {
	f, err := os.Open("testdata/canaries.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []canaryCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 3 {
			t.Fatalf("canaries.txt: %q: want <tag> <run> <signature>", line)
		}
		c := canaryCase{tag: fs[0], run: fs[1], signature: strings.Join(fs[2:], " "), seed: 1}
		kind, arg, _ := strings.Cut(c.run, "=")
		name, seed, hasSeed := strings.Cut(arg, "/")
		switch kind {
		case "seed":
			seed, hasSeed = arg, true
		case "nocounters":
			seed, hasSeed = arg, true
			c.opt = Options{Counters: -1}
		case "scenario":
			mk, ok := scenarios[name]
			if !ok {
				t.Fatalf("canaries.txt: %q: no scenario %q", line, name)
			}
			c.opt = mk()
		default:
			t.Fatalf("canaries.txt: %q: run is seed=<seed>, nocounters=<seed> or scenario=<name>[/<seed>]", line)
		}
		if hasSeed {
			if c.seed, err = strconv.ParseUint(seed, 0, 64); err != nil {
				t.Fatalf("canaries.txt: %q: %v", line, err)
			}
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCanaries runs the reproduction of every canary. Built without
// canaries (plain go test) each must pass: the bug is gone. Built with
// -tags simcanary_<tag> (make sim-canaries), that tag's reproductions must
// fail with their signature: the simulator finds the old logic.
func TestCanaries(t *testing.T) {
	cases := loadCanaries(t)
	on := Canaries()
	if *flagCanary != "" && !slices.Contains(on, *flagCanary) {
		t.Fatalf("-sim.canary=%s but the canaries built in are %v: is simcanary_%s a tag of the code?", *flagCanary, on, *flagCanary)
	}
	for _, k := range knownCanaries {
		if !slices.ContainsFunc(cases, func(c canaryCase) bool { return c.tag == k }) {
			t.Errorf("canaries.txt has no reproduction of canary %s", k)
		}
	}
	for _, tag := range on {
		if !slices.Contains(knownCanaries, tag) {
			t.Errorf("canary %s built in but not in knownCanaries", tag)
		}
	}
	var tags []string
	for _, c := range cases {
		if !slices.Contains(tags, c.tag) {
			tags = append(tags, c.tag)
		}
	}
	for _, tag := range tags {
		t.Run(tag, func(t *testing.T) {
			for _, c := range cases {
				if c.tag != tag {
					continue
				}
				t.Run(c.run, func(t *testing.T) {
					t.Parallel()
					runCanary(t, c, on)
				})
			}
		})
	}
}

func runCanary(t *testing.T, c canaryCase, on []string) {
	built := slices.Contains(on, c.tag)
	if len(on) > 0 && !built {
		t.Skipf("canaries %v built in", on)
	}
	opt := c.opt
	opt.OutDir = os.Getenv("ECSKV_SIM_OUT")
	res := Run(c.seed, opt)
	if !built {
		for _, f := range res.Failures {
			t.Errorf("%s", f)
		}
		return
	}
	for _, f := range res.Failures {
		if strings.Contains(f, c.signature) {
			t.Logf("simcanary_%s caught: %s", c.tag, f)
			return
		}
	}
	for _, p := range res.Plan {
		t.Logf("plan: %s", p)
	}
	t.Errorf("simcanary_%s NOT caught by %s: no failure contains %q (failures: %q)", c.tag, c.run, c.signature, res.Failures)
}

var (
	flagCanary   = flag.String("sim.canary", "", "TestCanaries: fail unless this canary is built in (make sim-canaries)")
	flagScenario = flag.String("sim.scenario", "", "TestScenario: run this scripted scenario (see testdata/canaries.txt)")
	flagTrace    = flag.String("sim.trace", "", "TestScenario, TestSim with -sim.seed: write the run's trace to this file")
)

// TestScenario replays one scripted scenario (-sim.scenario=<name>
// [-sim.seed=<seed>] [-sim.trace=<file>]) and prints its counters and
// failures.
func TestScenario(t *testing.T) {
	if *flagScenario == "" {
		t.Skip("no -sim.scenario")
	}
	mk, ok := scenarios[*flagScenario]
	if !ok {
		t.Fatalf("no scenario %q", *flagScenario)
	}
	opt := mk()
	if *flagTrace != "" {
		f, err := os.Create(*flagTrace)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		opt.Trace = w
	}
	seed := uint64(1)
	if *flagSeed != 0 {
		seed = *flagSeed
	}
	res := Run(seed, opt)
	t.Logf("canaries %v; ops %d, events %d, counters %v", Canaries(), res.Ops, res.Events, res.Counters)
	for _, f := range res.Failures {
		t.Errorf("%s", f)
	}
}
