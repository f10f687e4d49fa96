package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// respSystem is a system redis-benchmark can drive: the address of one of
// its Redis protocol servers ("" for a variant not measured this way),
// and whether redis-benchmark must run in cluster mode there.
type respSystem interface {
	respAddr() (addr string, cluster bool)
}

// redisBenchmark runs `redis-benchmark -t set,get -n N -c clients --csv`
// against sys (with --cluster for a Redis Cluster) and returns a row per
// test, workload RB-SET and RB-GET. CPU is measured over the whole run
// (both tests, N requests each) and split evenly between the two rows.
// redis-benchmark exits at the first error answer, so a row means none.
func redisBenchmark(ctx context.Context, o options, sys system) ([]row, error) {
	rs, ok := sys.(respSystem)
	if !ok || o.redisBench <= 0 {
		return nil, nil
	}
	a, cluster := rs.respAddr()
	if a == "" {
		return nil, nil
	}
	progress("%s: redis-benchmark -t set,get -n %d -c %d at %s", sys.name(), o.redisBench, o.clients, a)
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	args := []string{"-h", host, "-p", port, "-t", "set,get", "-n", strconv.Itoa(o.redisBench),
		"-c", strconv.Itoa(o.clients), "--csv"}
	if cluster {
		args = append(args, "--cluster")
	}
	cmd := exec.CommandContext(ctx, "redis-benchmark", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	srv0, err := treeUsage(sys.pids())
	if err != nil {
		return nil, err
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("redis-benchmark %s: %w: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	srv1, err := treeUsage(sys.pids())
	if err != nil {
		return nil, err
	}
	ps := cmd.ProcessState
	d := srv1.sub(srv0)
	cpu := cpuUse{server: d.cpu / 2, client: (ps.UserTime() + ps.SystemTime()).Seconds() / 2, serverSyscalls: d.syscalls / 2, serverSwitches: d.switches / 2}
	rows, err := parseRedisBenchmark(sys.name(), stdout.Bytes(), o, cpu)
	for _, r := range rows {
		progress("%s: redis-benchmark %s: %.0f requests/s, p50 %.2f ms, p99 %.2f ms", sys.name(), r.Workload, r.OpsPerSec, r.P50, r.P99)
	}
	return rows, err
}

// parseRedisBenchmark reads redis-benchmark's CSV (after what --cluster
// prints about the masters): a header, then
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms" per test.
func parseRedisBenchmark(system string, out []byte, o options, cpu cpuUse) ([]row, error) {
	if i := bytes.Index(out, []byte(`"test",`)); i >= 0 {
		out = out[i:]
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("redis-benchmark output %q: %v", out, err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	num := func(rec []string, name string) float64 {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return 0
		}
		v, _ := strconv.ParseFloat(rec[i], 64)
		return v
	}
	var rows []row
	for _, rec := range recs[1:] {
		res := &result{Clients: o.clients, Ops: int64(o.redisBench), OpsPerSec: num(rec, "rps")}
		lat := latency{P50: num(rec, "p50_latency_ms"), P99: num(rec, "p99_latency_ms")}
		if rec[col["test"]] == "SET" {
			res.Updates = lat
		} else {
			res.Reads = lat
		}
		r := newRow(system, "RB-"+rec[col["test"]], res, cpu)
		rows = append(rows, r)
	}
	return rows, nil
}
