package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countTarget answers every call at once and counts them.
type countTarget struct{ puts, gets atomic.Int64 }

func (t *countTarget) put(context.Context, string, []byte) error { t.puts.Add(1); return nil }
func (t *countTarget) get(context.Context, string) error         { t.gets.Add(1); return nil }
func (t *countTarget) close() error                              { return nil }

// TestRateBoundsTheLoad: with --rate the clients together run no more than
// the rate allows (plus the bucket's one token), where unbounded they run
// far more.
func TestRateBoundsTheLoad(t *testing.T) {
	const d = 500 * time.Millisecond
	run := func(r float64) int64 {
		ct := &countTarget{}
		w, err := parseWorkload("w")
		if err != nil {
			t.Fatal(err)
		}
		b := &bench{o: options{clients: 8, keys: 100, valueSize: 8, dist: "uniform", rate: r, quiet: true}, w: w, t: ct}
		res := b.runPhase(context.Background(), "run", d)
		if res.Ops != ct.puts.Load() || ct.gets.Load() != 0 || res.Errors != 0 {
			t.Fatalf("result %d ops, %d errors; target saw %d puts, %d gets", res.Ops, res.Errors, ct.puts.Load(), ct.gets.Load())
		}
		return res.Ops
	}
	const r = 400
	limited := run(r)
	if max := int64(r*d.Seconds()) + 1 + 1; limited > max || limited < max/4 {
		t.Fatalf("--rate %d for %v ran %d ops, want at most %d and not far below", r, d, limited, max)
	}
	if free := run(0); free <= 4*limited {
		t.Fatalf("unbounded run did %d ops, not more than 4x the %d of --rate %d", free, limited, r)
	}
}

// startTarget records when each put started.
type startTarget struct {
	countTarget
	mu     sync.Mutex
	starts []time.Time
}

func (t *startTarget) put(ctx context.Context, k string, v []byte) error {
	t.mu.Lock()
	t.starts = append(t.starts, time.Now())
	t.mu.Unlock()
	return t.countTarget.put(ctx, k, v)
}

// TestRateDoesNotBurst: a fixed rate starts operations one interval apart
// from the first, not every client at once when a phase begins (which
// made the first clients' writes the tail of a light load).
func TestRateDoesNotBurst(t *testing.T) {
	const r, clients = 100, 16
	w, err := parseWorkload("w")
	if err != nil {
		t.Fatal(err)
	}
	st := &startTarget{}
	b := &bench{o: options{clients: clients, keys: 100, valueSize: 8, dist: "uniform", rate: r, quiet: true}, w: w, t: st}
	begin := time.Now()
	b.runPhase(context.Background(), "run", 100*time.Millisecond)
	st.mu.Lock()
	defer st.mu.Unlock()
	early := 0
	for _, s := range st.starts {
		if s.Sub(begin) < time.Second/r {
			early++
		}
	}
	// The first token is there at once, the next one interval later (a
	// slow machine may start even the first later).
	if early > 1 || len(st.starts) == 0 {
		t.Fatalf("%d ops started within the first 1/%d s (of %d in all), want at most 1", early, r, len(st.starts))
	}
}

func TestValidateRate(t *testing.T) {
	o := options{clients: 1, keys: 2, duration: time.Second}
	for _, r := range []float64{-1, -0.5} {
		o.rate = r
		if err := o.validate(); err == nil {
			t.Fatalf("--rate %v accepted", r)
		}
	}
	o.rate = 1000
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
}
