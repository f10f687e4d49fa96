package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// latency and result mirror kvbench --json.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
}

type result struct {
	Workload  string  `json:"workload"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	Reads     latency `json:"reads"`
	Updates   latency `json:"updates"`
}

// kvbench runs one workload against target and parses its JSON result.
func kvbench(ctx context.Context, o options, target, workload string, load bool, extra []string) (*result, error) {
	args := []string{
		"--target", target, "--workload", workload, "--clients", strconv.Itoa(o.clients),
		"--keys", strconv.Itoa(o.keys), "--value-size", strconv.Itoa(o.value),
		"--duration", o.duration.String(), "--warmup", o.warmup.String(),
		"--load=" + strconv.FormatBool(load), "--json", "--quiet",
	}
	cmd := exec.CommandContext(ctx, filepath.Join(o.binDir, "kvbench"), append(args, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kvbench %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("kvbench output: %w", err)
	}
	return &r, nil
}

// row is one line of the table: a system's figures for one workload. P50
// and P99 are the worse of its reads' and updates' (A has both).
type row struct {
	System    string  `json:"system"`
	Workload  string  `json:"workload"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	ReadP99   float64 `json:"read_p99_ms"`
	UpdateP99 float64 `json:"update_p99_ms"`
	Errors    int64   `json:"errors"`
}

func newRow(system string, r *result) row {
	return row{
		System: system, Workload: strings.ToUpper(r.Workload), OpsPerSec: r.OpsPerSec,
		P50: max(r.Reads.P50, r.Updates.P50), P99: max(r.Reads.P99, r.Updates.P99),
		ReadP99: r.Reads.P99, UpdateP99: r.Updates.P99, Errors: r.Errors,
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
	fmt.Fprintf(w, "%-14s %-8s %10s %8s %8s %9s %10s %7s\n", "system", "workload", "ops/s", "p50 ms", "p99 ms", "read p99", "vs "+baseline, "errors")
	for _, r := range rows {
		ratio := "-"
		if b := base[r.Workload]; b > 0 {
			ratio = fmt.Sprintf("%.2fx", r.OpsPerSec/b)
		}
		rp99 := "-"
		if r.ReadP99 > 0 {
			rp99 = fmt.Sprintf("%.2f", r.ReadP99)
		}
		fmt.Fprintf(w, "%-14s %-8s %10.0f %8.2f %8.2f %9s %10s %7d\n", r.System, r.Workload, r.OpsPerSec, r.P50, r.P99, rp99, ratio, r.Errors)
	}
}
