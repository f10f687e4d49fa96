package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// runProfile profiles a 3-server ecskv under workloads W and C: the CPU
// profile of every kvserver (from its --pprof endpoint) and of kvbench over
// the measured run, each with a `go tool pprof -top` summary beside it.
func runProfile(ctx context.Context, o options) (err error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ecskv-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sys := &ecskv{n: max(o.profileServers, 3), binDir: o.binDir, env: []string{"ECSKV_PPROF=true"}}
	progress("%s: starting with --pprof", sys.name())
	target, err := sys.start(ctx, dir)
	defer func() { err = errors.Join(err, sys.stop()) }()
	if err != nil {
		return err
	}
	progress("loading %d keys", o.keys)
	if err := loadKeys(ctx, o, target, nil); err != nil {
		return err
	}
	for _, w := range []string{"w", "c"} {
		if err := profileWorkload(ctx, o, sys, target, w); err != nil {
			return err
		}
	}
	progress("profiles and summaries in %s", o.out)
	return nil
}

func profileWorkload(ctx context.Context, o options, sys *ecskv, target, w string) error {
	W := strings.ToUpper(w)
	progress("workload %s: %v warm-up, then %v profiled", W, o.warmup, o.duration)
	clientProf := filepath.Join(o.out, "kvbench-"+W+".pprof")
	var (
		wg      sync.WaitGroup
		res     *result
		benchEr error
	)
	wg.Go(func() {
		res, benchEr = kvbench(ctx, o, target, w, false, []string{"--cpuprofile", clientProf})
	})
	select {
	case <-ctx.Done():
	case <-time.After(o.warmup):
	}
	before := scrapeAll(sys)
	errs := make([]error, sys.n)
	var pw sync.WaitGroup
	errs = append(errs, make([]error, sys.n)...)
	for i := 1; i <= sys.n; i++ {
		pw.Go(func() {
			errs[i-1] = fetchProfile(ctx, sys.metricsAddr(i), "profile", o.duration, filepath.Join(o.out, fmt.Sprintf("s%d-%s.pprof", i, W)))
		})
		pw.Go(func() { // allocations over the same run: what the GC pays for
			errs[sys.n+i-1] = fetchProfile(ctx, sys.metricsAddr(i), "allocs", o.duration, filepath.Join(o.out, fmt.Sprintf("s%d-%s.allocs.pprof", i, W)))
		})
	}
	pw.Wait()
	after := scrapeAll(sys)
	wg.Wait()
	if err := errors.Join(append(errs, benchEr)...); err != nil {
		return err
	}
	progress("workload %s: %.0f ops/s, read p99 %.2f ms, update p99 %.2f ms", W, res.OpsPerSec, res.Reads.P99, res.Updates.P99)
	for i := range sys.n {
		progress("  s%d: %s", i+1, perOp(before[i], after[i]))
	}
	for i := 1; i <= sys.n; i++ {
		if err := summarize(o, filepath.Join(o.out, fmt.Sprintf("s%d-%s.pprof", i, W)), "kvserver"); err != nil {
			return err
		}
	}
	return summarize(o, clientProf, "kvbench")
}

// fetchProfile saves a profile of kind (profile: CPU; allocs: allocations)
// over d from a server's /debug/pprof.
func fetchProfile(ctx context.Context, metrics, kind string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", metrics, kind, max(int(d.Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// summarize writes `go tool pprof -top` of a profile beside it.
func summarize(o options, prof, bin string) error {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", filepath.Join(o.binDir, bin), prof).Output()
	if err != nil {
		return fmt.Errorf("pprof -top %s: %w", prof, err)
	}
	return os.WriteFile(strings.TrimSuffix(prof, ".pprof")+".top.txt", out, 0o644)
}

// Server metrics whose mean over the profiled run tells where a write's
// time goes; the write path's stages are summed by stage label.
var timers = []string{"ecskv_storage_wal_sync_seconds", "ecskv_replication_commit_seconds", "ecskv_request_duration_seconds",
	"stage=queue", "stage=lock", "stage=step", "stage=apply", "stage=sync", "stage=hop"}

// scrapeAll reads the _sum and _count of timers from every server.
func scrapeAll(sys *ecskv) []map[string]float64 {
	out := make([]map[string]float64, sys.n)
	for i := range sys.n {
		out[i] = scrape(sys.metricsAddr(i + 1))
	}
	return out
}

func scrape(addr string) map[string]float64 {
	m := map[string]float64{}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		base, labels, _ := strings.Cut(name, "{") // sum over labels (request duration by op)
		if base == "ecskv_write_stage_seconds_sum" || base == "ecskv_write_stage_seconds_count" {
			// One series per stage: keyed "stage=NAME_sum" and "_count".
			stage, _, _ := strings.Cut(strings.TrimPrefix(labels, `stage="`), `"`)
			base = "stage=" + stage + strings.TrimPrefix(base, "ecskv_write_stage_seconds")
		}
		for _, t := range timers {
			if base == t+"_sum" || base == t+"_count" {
				var v float64
				_, _ = fmt.Sscan(val, &v)
				m[base] += v
			}
		}
	}
	return m
}

// perOp formats each timer's count and mean between two scrapes.
func perOp(before, after map[string]float64) string {
	var parts []string
	for _, t := range timers {
		n := after[t+"_count"] - before[t+"_count"]
		if n <= 0 {
			continue
		}
		mean := (after[t+"_sum"] - before[t+"_sum"]) / n
		parts = append(parts, fmt.Sprintf("%s n=%.0f mean=%.3fms", strings.TrimPrefix(t, "ecskv_"), n, mean*1000))
	}
	return strings.Join(parts, "  ")
}
