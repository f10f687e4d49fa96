// Command kvbench is a YCSB-style load generator. One workload runs
// unchanged against ecskv, Redis (Cluster) and etcd, so they can be compared
// in the same run:
//
//	kvbench --target ecskv://127.0.0.1:2379 --workload a --clients 50 --duration 30s
//	kvbench --target redis-cluster://127.0.0.1:7000 --workload c --json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"time"

	"github.com/ecskv/ecskv/common/cliutil"
	"github.com/spf13/cobra"
)

type options struct {
	target, server, workload, dist string
	clients, keys, valueSize       int
	rate                           float64 // ops/s of all clients together; 0: unbounded
	duration, warmup               time.Duration
	load, asJSON, nearest, quiet   bool
	unary                          bool
	cpuProfile                     string
	zone                           string    // nearest reads prefer this zone's members
	coords                         []float64 // then the members closest to these
}

func main() {
	var o options
	cmd := &cobra.Command{
		Use:           "kvbench --workload a|b|c|w [--target URL | --server ADDR]",
		Short:         "YCSB-style load generator for ecskv, Redis and etcd",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(*cobra.Command, []string) error { return run(o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "ecskv://127.0.0.1:2379", "system under test: ecskv://ETCD, ecskv+server://ADDR, redis://ADDR, redis-cluster://A,B, etcd://A,B")
	f.StringVar(&o.server, "server", "", "shorthand for --target ecskv+server://ADDR")
	f.StringVar(&o.workload, "workload", "a", "a (50/50 read/update), b (95/5), c (read only), w (write only)")
	f.StringVar(&o.dist, "distribution", "zipfian", "key popularity: zipfian or uniform")
	f.IntVar(&o.clients, "clients", 50, "concurrent clients")
	f.IntVar(&o.keys, "keys", 100_000, "key count")
	f.IntVar(&o.valueSize, "value-size", 1024, "value bytes")
	f.Float64Var(&o.rate, "rate", 0, "operations per second of all clients together in the warm-up and the measured run (0: as fast as they go)")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "measured run")
	f.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured run before it")
	f.BoolVar(&o.load, "load", true, "write every key first (the load phase)")
	f.BoolVar(&o.nearest, "nearest", false, "ecskv: read from the nearest clean chain member")
	f.StringVar(&o.zone, "zone", "", "ecskv: this client's zone; nearest reads go to a chain member in it (else $ECSKV_ZONE)")
	f.Float64SliceVar(&o.coords, "coords", nil, "ecskv: `X,Y` of this client; with no member in --zone, nearest reads go to the closest (else $ECSKV_COORDS)")
	f.BoolVar(&o.unary, "unary", false, "ecskv: one unary RPC per call instead of the Batch stream (for comparison)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured run to this file")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&o.quiet, "quiet", false, "no progress line")
	cliutil.Setup(cmd)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(2)
	}
}

func (o options) validate() error {
	switch {
	case o.clients < 1:
		return fmt.Errorf("--clients must be >= 1, got %d", o.clients)
	case o.keys < 2:
		return fmt.Errorf("--keys must be >= 2, got %d", o.keys)
	case o.valueSize < 0:
		return fmt.Errorf("--value-size must be >= 0, got %d", o.valueSize)
	case o.duration <= 0:
		return fmt.Errorf("--duration must be > 0, got %v", o.duration)
	case o.warmup < 0:
		return fmt.Errorf("--warmup must be >= 0, got %v", o.warmup)
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return fmt.Errorf("--rate must be >= 0 operations per second, got %v", o.rate)
	}
	return nil
}

func run(o options) error {
	if o.server != "" {
		o.target = "ecskv+server://" + o.server
	}
	if err := o.validate(); err != nil {
		return err
	}
	w, err := parseWorkload(o.workload)
	if err != nil {
		return err
	}
	if _, err := newKeyChooser(o.keys, o.dist, 1); err != nil {
		return err
	}
	ctx := context.Background()
	t, err := openTarget(ctx, o)
	if err != nil {
		return err
	}
	defer t.close()
	b := &bench{o: o, w: w, t: t}
	if o.load {
		if err := b.loadPhase(ctx); err != nil {
			return err
		}
	}
	if o.warmup > 0 {
		b.runPhase(ctx, "warmup", o.warmup)
	}
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	res := b.runPhase(ctx, "run", o.duration)
	if err := stopProfile(); err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.print(os.Stdout)
	return nil
}

// startCPUProfile profiles the process into path ("" = no profile) until
// the returned function is called.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
