package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// latency and result mirror kvbench --json.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

type result struct {
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	Reads     latency `json:"reads"`
	Updates   latency `json:"updates"`
}

// kvbench runs one workload against target and parses its JSON result.
func kvbench(ctx context.Context, o options, target, workload string, load bool, extra []string) (*result, error) {
	cmd, args, stdout, stderr := kvbenchCmd(ctx, o, target, workload, load, extra)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kvbench %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return parseResult(stdout)
}

func kvbenchCmd(ctx context.Context, o options, target, workload string, load bool, extra []string) (cmd *exec.Cmd, args []string, stdout, stderr *bytes.Buffer) {
	args = []string{
		"--target", target, "--workload", workload, "--clients", strconv.Itoa(o.clients),
		"--keys", strconv.Itoa(o.keys), "--value-size", strconv.Itoa(o.value),
		"--duration", o.duration.String(), "--warmup", o.warmup.String(),
		"--load=" + strconv.FormatBool(load), "--json", "--quiet",
	}
	if o.rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(o.rate, 'f', -1, 64))
	}
	cmd = exec.CommandContext(ctx, filepath.Join(o.binDir, "kvbench"), append(args, extra...)...)
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, args, stdout, stderr
}

func parseResult(out *bytes.Buffer) (*result, error) {
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("kvbench output: %w", err)
	}
	return &r, nil
}

// loadKeys writes every key once (kvbench's load phase, then a 1 s W run),
// so that no measured run includes the load.
func loadKeys(ctx context.Context, o options, target string, extra []string) error {
	o.duration, o.warmup = time.Second, 0
	_, err := kvbench(ctx, o, target, "w", true, extra)
	return err
}

// cpuUse is the CPU seconds (user+system) used over a measured run.
type cpuUse struct {
	server         float64 // every process of the system (treeUsage of its pids)
	client         float64 // kvbench
	serverSyscalls int64   // the system's read and write system calls
	serverSwitches int64   // the context switches of all its threads
}

// kvbenchCPU runs one workload (no load phase) against a system whose
// server processes are servers and measures the CPU they and kvbench use
// over the measured run only. kvbench prints no marker when its warm-up
// ends, so the first sample is taken --warmup after it starts: its start-up
// (connecting to the target) shifts the window a few milliseconds into the
// warm-up. The last sample is taken when kvbench has exited: the tail after
// the measured run (printing the result, closing connections) is as short.
// Both add a fraction of a percent to a run of seconds.
func kvbenchCPU(ctx context.Context, o options, target, workload string, extra []string, servers []int) (*result, cpuUse, error) {
	cmd, args, stdout, stderr := kvbenchCmd(ctx, o, target, workload, false, extra)
	fail := func(err error) (*result, cpuUse, error) {
		return nil, cpuUse{}, fmt.Errorf("kvbench %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(o.warmup):
	}
	srv0, err0 := treeUsage(servers)
	cli0, err1 := readStat(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return fail(err)
	}
	srv1, err2 := treeUsage(servers)
	if err := errors.Join(err0, err1, err2); err != nil {
		return nil, cpuUse{}, fmt.Errorf("cpu: %w", err)
	}
	r, err := parseResult(stdout)
	if err != nil {
		return nil, cpuUse{}, err
	}
	// The client's total from its rusage, less what it had used by the
	// first sample (its warm-up, in /proc; it has no children).
	ps := cmd.ProcessState
	cli := (ps.UserTime() + ps.SystemTime()).Seconds() - float64(cli0.ticks)/clkTck
	d := srv1.sub(srv0)
	return r, cpuUse{server: d.cpu, client: max(cli, 0), serverSyscalls: d.syscalls, serverSwitches: d.switches}, nil
}

// row is one line of the table: a system's figures for one workload and
// client count. Workload is W, A or C, with "/N" when the run had N
// clients instead of --clients (W/256). P50 and P99 are the worse of its
// reads' and updates' (A has both). The CPU figures are seconds
// (user+system) over the measured run: ServerCPU of all the system's
// processes, ClientCPU of kvbench, and each per 1,000 operations.
type row struct {
	System         string  `json:"system"`
	Workload       string  `json:"workload"`
	Clients        int     `json:"clients"`
	Ops            int64   `json:"ops"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	P50            float64 `json:"p50_ms"`
	P99            float64 `json:"p99_ms"`
	ReadP99        float64 `json:"read_p99_ms"`
	UpdateP99      float64 `json:"update_p99_ms"`
	Errors         int64   `json:"errors"`
	ServerCPU      float64 `json:"server_cpu_s"`
	ClientCPU      float64 `json:"client_cpu_s"`
	ServerCPUPer1k float64 `json:"server_cpu_s_per_1k_ops"`
	ClientCPUPer1k float64 `json:"client_cpu_s_per_1k_ops"`
	// ServerSyscallsPerOp: the system's read and write system calls per
	// operation over the measured run.
	ServerSyscallsPerOp float64 `json:"server_syscalls_per_op"`
	// ServerSwitchesPerOp: the context switches of all the system's
	// server threads per operation over the measured run.
	ServerSwitchesPerOp float64 `json:"server_switches_per_op"`
}

func newRow(system, workload string, r *result, cpu cpuUse) row {
	per1k := func(s float64) float64 {
		if r.Ops == 0 {
			return 0
		}
		return s / float64(r.Ops) * 1000
	}
	return row{
		System: system, Workload: workload, Clients: r.Clients, Ops: r.Ops, OpsPerSec: r.OpsPerSec,
		P50: max(r.Reads.P50, r.Updates.P50), P99: max(r.Reads.P99, r.Updates.P99),
		ReadP99: r.Reads.P99, UpdateP99: r.Updates.P99, Errors: r.Errors,
		ServerCPU: cpu.server, ClientCPU: cpu.client,
		ServerCPUPer1k: per1k(cpu.server), ClientCPUPer1k: per1k(cpu.client),
		ServerSyscallsPerOp: per1k(float64(cpu.serverSyscalls)) / 1000,
		ServerSwitchesPerOp: per1k(float64(cpu.serverSwitches)) / 1000,
	}
}

// baseline is the system every ratio is relative to.
const baseline = "ecskv-3"

func printTable(w io.Writer, rows []row) {
	base := map[string]float64{}
	for _, r := range rows {
		if r.System == baseline {
			base[r.Workload] = r.OpsPerSec
		}
	}
	const format = "%-14s %-8s %7s %10s %8s %8s %9s %10s %9s %9s %9s %9s %7s\n"
	fmt.Fprintf(w, format, "system", "workload", "clients", "ops/s", "p50 ms", "p99 ms", "read p99", "vs "+baseline, "srv CPU", "cli CPU", "srv sys", "srv cs", "errors")
	for _, r := range rows {
		ratio := "-"
		if b := base[r.Workload]; b > 0 {
			ratio = fmt.Sprintf("%.2fx", r.OpsPerSec/b)
		}
		rp99 := "-"
		if r.ReadP99 > 0 {
			rp99 = fmt.Sprintf("%.2f", r.ReadP99)
		}
		fmt.Fprintf(w, format, r.System, r.Workload, strconv.Itoa(r.Clients), fmt.Sprintf("%.0f", r.OpsPerSec),
			fmt.Sprintf("%.2f", r.P50), fmt.Sprintf("%.2f", r.P99), rp99, ratio,
			fmt.Sprintf("%.3f", r.ServerCPUPer1k), fmt.Sprintf("%.3f", r.ClientCPUPer1k), fmt.Sprintf("%.2f", r.ServerSyscallsPerOp),
			fmt.Sprintf("%.2f", r.ServerSwitchesPerOp), strconv.FormatInt(r.Errors, 10))
	}
	fmt.Fprintln(w, "srv CPU, cli CPU: CPU seconds (user+system) per 1,000 ops over the measured run, of all the system's")
	fmt.Fprintln(w, "server processes and of the client (kvbench; redis-benchmark for RB- rows); unlike ops/s, they hardly depend on the cores or other load")
	fmt.Fprintln(w, "srv sys: read and write system calls of all the system's server processes per op (messages, WAL writes and syncs)")
	fmt.Fprintln(w, "srv cs: context switches of all the system's server threads per op (a thread sleeping for a message, a lock or a sync, or preempted)")
}
