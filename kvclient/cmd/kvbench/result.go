package main

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latency summarises one operation's histogram, in milliseconds.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type result struct {
	Target    string  `json:"target"`
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	Rate      float64 `json:"rate,omitempty"` // --rate; 0: unbounded
	Keys      int     `json:"keys"`
	ValueSize int     `json:"value_size"`
	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    int64   `json:"errors"`
	Reads     latency `json:"reads"`
	Updates   latency `json:"updates"`
}

func summarise(h *hdrhistogram.Histogram) latency {
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	return latency{Count: h.TotalCount(), P50: ms(50), P95: ms(95), P99: ms(99), P999: ms(99.9), Max: float64(h.Max()) / 1000}
}

func (b *bench) collect(workers []*worker, took time.Duration) *result {
	reads, updates := newHist(), newHist()
	r := &result{Target: b.o.target, Workload: b.o.workload, Clients: b.o.clients, Rate: b.o.rate, Keys: b.o.keys,
		ValueSize: b.o.valueSize, Seconds: took.Seconds()}
	for _, w := range workers {
		reads.Merge(w.reads)
		updates.Merge(w.updates)
		r.Errors += w.errs
	}
	r.Reads, r.Updates = summarise(reads), summarise(updates)
	r.Ops = r.Reads.Count + r.Updates.Count
	r.OpsPerSec = float64(r.Ops) / took.Seconds()
	return r
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "target %s  workload %s  clients %d  keys %d  value %d B  %.1fs\n",
		r.Target, r.Workload, r.Clients, r.Keys, r.ValueSize, r.Seconds)
	fmt.Fprintf(w, "throughput %.0f ops/s  (%d ops, %d errors)", r.OpsPerSec, r.Ops, r.Errors)
	if r.Rate > 0 {
		fmt.Fprintf(w, "  at --rate %.0f", r.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-8s %10s %9s %9s %9s %9s %9s\n", "op", "count", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, row := range []struct {
		name string
		l    latency
	}{{"read", r.Reads}, {"update", r.Updates}} {
		if row.l.Count == 0 {
			continue
		}
		fmt.Fprintf(w, "%-8s %10d %9.3f %9.3f %9.3f %9.3f %9.3f\n", row.name, row.l.Count, row.l.P50, row.l.P95, row.l.P99, row.l.P999, row.l.Max)
	}
}
