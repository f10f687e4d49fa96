// Command peers measures ecskv side by side with Redis Cluster and etcd on
// this machine (`make bench-peers`): it starts each system on loopback, runs
// the kvbench workloads W, A and C against it (and W and A again with
// --many-clients), stops it, and prints one table with every system's
// figures, their ratio to ecskv-3 and the CPU seconds per 1,000 operations
// of the system's servers and of the client, plus peers.json and a chart
// (peers.svg) in --out. It also runs redis-benchmark (-t set,get) against
// the systems that speak RESP: ecskv-3's Redis protocol front door on one
// server, and the Redis Cluster in --cluster mode (rows RB-SET and RB-GET;
// --only-redis-benchmark runs just those, --redis-benchmark 0 none).
//
// With --profile (`make profile`) it instead runs W and C against a
// 3-server (--profile-servers) ecskv started with --pprof and saves CPU profiles of every
// kvserver and of kvbench, with `go tool pprof -top` summaries.
//
// Everything it starts it stops, also on SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	binDir, out, systems string
	duration, warmup     time.Duration
	clients, keys, value int
	manyClients          int
	rate                 float64 // kvbench --rate of every run; 0: unbounded
	profile              bool
	profileServers       int
	redisBench           int  // requests of each redis-benchmark test; 0: none
	onlyRedisBench       bool // skip the kvbench workloads
	workloads            string
}

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin-dir", "bin", "directory with ecs, kvserver and kvbench")
	flag.StringVar(&o.out, "out", "bench-results", "directory for results (JSON, SVG, profiles)")
	flag.StringVar(&o.systems, "systems", "ecskv-3,ecskv-3-unary,ecskv-3-nosync,ecskv-5,redis-cluster,etcd-3", "systems to measure, in order")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "measured run of each workload")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured run before each workload")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients")
	flag.IntVar(&o.manyClients, "many-clients", 256, "clients of the extra W and A runs, where latency does not limit throughput (0: none)")
	flag.Float64Var(&o.rate, "rate", 0, "kvbench --rate of every run: a fixed load in operations per second, to compare latencies at one load (0: as fast as the clients go)")
	flag.StringVar(&o.workloads, "workloads", "w,a,c", "kvbench workloads to run, in order (a subset of w,a,c)")
	flag.IntVar(&o.keys, "keys", 10_000, "keys (written once per system by a load run before the workloads)")
	flag.IntVar(&o.value, "value-size", 1024, "value bytes")
	flag.IntVar(&o.redisBench, "redis-benchmark", 100_000, "requests of each redis-benchmark test (-t set,get, --clients connections) against the systems that speak RESP (0: none)")
	flag.BoolVar(&o.onlyRedisBench, "only-redis-benchmark", false, "run only redis-benchmark, not the kvbench workloads")
	flag.BoolVar(&o.profile, "profile", false, "profile ecskv-3 under W and C instead of comparing systems")
	flag.IntVar(&o.profileServers, "profile-servers", 3, "servers of the profiled ecskv (replicas stay 3)")
	flag.Parse()
	for _, w := range strings.Split(o.workloads, ",") {
		if w := strings.ToLower(strings.TrimSpace(w)); w != "w" && w != "a" && w != "c" {
			fmt.Fprintf(os.Stderr, "peers: --workloads: unknown workload %q (want w, a or c)\n", w)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.profile {
		err = runProfile(ctx, o)
	} else {
		err = runPeers(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// benchRun is one measured kvbench run: a workload and its clients.
type benchRun struct {
	workload string
	clients  int
}

// label is the run's workload in the table: W, or W/256 when the clients
// are not --clients.
func (r benchRun) label(o options) string {
	l := strings.ToUpper(r.workload)
	if r.clients != o.clients {
		l += "/" + strconv.Itoa(r.clients)
	}
	return l
}

// benchRuns are the runs against every system, in this order: the
// --workloads (W, A and C) with --clients, then W and A with
// --many-clients.
func benchRuns(o options) []benchRun {
	var runs, many []benchRun
	for _, w := range strings.Split(o.workloads, ",") {
		w = strings.ToLower(strings.TrimSpace(w))
		runs = append(runs, benchRun{w, o.clients})
		if w != "c" && o.manyClients > 0 && o.manyClients != o.clients {
			many = append(many, benchRun{w, o.manyClients})
		}
	}
	return append(runs, many...)
}

func runPeers(ctx context.Context, o options) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	var rows []row
	for _, name := range strings.Split(o.systems, ",") {
		sys, err := newSystem(name, o.binDir)
		if err != nil {
			return err
		}
		res, err := measure(ctx, o, sys)
		rows = append(rows, res...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	printTable(os.Stdout, rows)
	raw, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	jsonPath, svgPath := filepath.Join(o.out, "peers.json"), filepath.Join(o.out, "peers.svg")
	if err := os.WriteFile(jsonPath, raw, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, chart(rows), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", jsonPath, svgPath)
	return nil
}

// measure starts sys, runs every workload on it and stops it.
func measure(ctx context.Context, o options, sys system) (rows []row, err error) {
	dir, err := os.MkdirTemp("", "ecskv-peers-"+sys.name()+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress("%s: starting", sys.name())
	start := time.Now()
	target, err := sys.start(ctx, dir)
	defer func() {
		progress("%s: stopping", sys.name())
		err = errors.Join(err, sys.stop())
	}()
	if err != nil {
		return nil, err
	}
	progress("%s: ready in %.1fs at %s", sys.name(), time.Since(start).Seconds(), target)
	if !o.onlyRedisBench {
		if rows, err = kvbenchRuns(ctx, o, sys, target); err != nil {
			return rows, err
		}
	}
	rb, err := redisBenchmark(ctx, o, sys)
	return append(rows, rb...), err
}

// kvbenchRuns loads the keys and runs every kvbench workload on sys.
func kvbenchRuns(ctx context.Context, o options, sys system, target string) (rows []row, err error) {
	progress("%s: loading %d keys", sys.name(), o.keys)
	if err := loadKeys(ctx, o, target, sys.benchArgs()); err != nil {
		return nil, err
	}
	for _, run := range benchRuns(o) {
		w, ro := run.label(o), o
		ro.clients = run.clients
		progress("%s: workload %s (%d clients, %v + %v warm-up)", sys.name(), w, run.clients, o.duration, o.warmup)
		res, cpu, err := kvbenchCPU(ctx, ro, target, run.workload, sys.benchArgs(), sys.pids())
		if err != nil {
			return rows, err
		}
		r := newRow(sys.name(), w, res, cpu)
		progress("%s: workload %s: %.0f ops/s, p99 %.2f ms, %d errors, CPU s per 1,000 ops: servers %.3f, client %.3f",
			sys.name(), w, r.OpsPerSec, r.P99, res.Errors, r.ServerCPUPer1k, r.ClientCPUPer1k)
		rows = append(rows, r)
	}
	return rows, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
