package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/time/rate"
)

type bench struct {
	o options
	w workload
	t target
}

// opTimeout bounds one operation, so a stuck call shows as an error.
const opTimeout = 10 * time.Second

// loadPhase writes every key once with all clients, showing progress.
func (b *bench) loadPhase(ctx context.Context) error {
	var next, done, errs atomic.Int64
	value := make([]byte, b.o.valueSize)
	stop := b.progress("load", func() string {
		return fmt.Sprintf("%d/%d keys, %d errors", done.Load(), b.o.keys, errs.Load())
	})
	var wg sync.WaitGroup
	for c := 0; c < b.o.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.o.keys); i = next.Add(1) - 1 {
				cctx, cancel := context.WithTimeout(ctx, opTimeout)
				if err := b.t.put(cctx, keyName(uint64(i)), value); err != nil {
					errs.Add(1)
				}
				cancel()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	stop()
	if n := errs.Load(); n > 0 {
		return fmt.Errorf("load phase: %d of %d writes failed", n, b.o.keys)
	}
	return nil
}

// worker is one client's measurements.
type worker struct {
	reads, updates *hdrhistogram.Histogram
	errs           int64
	ops            atomic.Int64
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(opTimeout/time.Microsecond), 3)
}

// runPhase runs the mix for d and returns what it measured.
func (b *bench) runPhase(ctx context.Context, phase string, d time.Duration) *result {
	workers := make([]*worker, b.o.clients)
	deadline := time.Now().Add(d)
	// With --rate the clients share one token bucket: the system gets a
	// fixed load, to see its latency at that load. The bucket holds one
	// token: one as deep as the clients started every phase with all of
	// them at once, and at 100 ops/s those 50 writes were the run's p99.
	var lim *rate.Limiter
	if b.o.rate > 0 {
		lim = rate.NewLimiter(rate.Limit(b.o.rate), 1)
	}
	var wg sync.WaitGroup
	value := make([]byte, b.o.valueSize)
	for c := range workers {
		w := &worker{reads: newHist(), updates: newHist()}
		workers[c] = w
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			b.loop(ctx, w, seed, value, deadline, lim)
		}(uint64(c + 1))
	}
	start := time.Now()
	stop := b.progress(phase, func() string {
		var n int64
		for _, w := range workers {
			n += w.ops.Load()
		}
		return fmt.Sprintf("%d ops, %.0f ops/s", n, float64(n)/time.Since(start).Seconds())
	})
	wg.Wait()
	stop()
	return b.collect(workers, time.Since(start))
}

// loop runs one client's operations until deadline, each when lim (if
// any) allows it. Latencies are from an operation's start, not from when
// the rate would have started it.
func (b *bench) loop(ctx context.Context, w *worker, seed uint64, value []byte, deadline time.Time, lim *rate.Limiter) {
	kc, _ := newKeyChooser(b.o.keys, b.o.dist, seed)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for time.Now().Before(deadline) {
		if lim != nil && lim.Wait(dctx) != nil {
			return // the wait would pass the deadline
		}
		key := keyName(kc.next())
		read := kc.rng.Float64() < b.w.readShare
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		start := time.Now()
		var err error
		if read {
			err = b.t.get(cctx, key)
		} else {
			err = b.t.put(cctx, key, value)
		}
		us := time.Since(start).Microseconds()
		cancel()
		switch {
		case err != nil:
			w.errs++
		case read:
			_ = w.reads.RecordValue(max(us, 1))
		default:
			_ = w.updates.RecordValue(max(us, 1))
		}
		w.ops.Add(1)
	}
}

// progress prints a live line on stderr every second until stopped.
func (b *bench) progress(phase string, line func() string) (stop func()) {
	if b.o.quiet {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(os.Stderr, "\r[%s %4.0fs] %s\n", phase, time.Since(start).Seconds(), line())
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "\r[%s %4.0fs] %s   ", phase, time.Since(start).Seconds(), line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
