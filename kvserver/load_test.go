package kvserver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ackedWrite is one write a workload got an answer for.
type ackedWrite struct {
	key, val   string
	status     kvpb.Status
	start, end time.Time
}

// workload writes unique keys (so each is written exactly once) from g
// goroutines until stopped, and records every answer.
type workload struct {
	c      *tcluster
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards acked, errs, maxLat
	acked  []ackedWrite
	errs   []error
	maxLat time.Duration
	n      atomic.Int64
}

// startWorkload runs g writers of unique keys "<prefix>-g-i". keyFor, when
// set, picks the key for (g, i) instead.
func (c *tcluster) startWorkload(prefix string, g int, keyFor func(g, i int) string) *workload {
	ctx, cancel := context.WithCancel(context.Background())
	wl := &workload{c: c, cancel: cancel}
	if keyFor == nil {
		keyFor = func(g, i int) string { return fmt.Sprintf("%s-%d-%d", prefix, g, i) }
	}
	for gi := range g {
		wl.wg.Add(1)
		go func() {
			defer wl.wg.Done()
			w := c.client()
			for i := 0; ctx.Err() == nil; i++ {
				key, val := keyFor(gi, i), fmt.Sprintf("v-%d-%d", gi, i)
				start := time.Now()
				// Every started write must finish: a write abandoned mid-way
				// would leave its outcome unknown.
				wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
				st, err := w.put(wctx, key, val)
				wcancel()
				end := time.Now()
				wl.mu.Lock()
				if err != nil {
					wl.errs = append(wl.errs, fmt.Errorf("put %s: %w", key, err))
				} else {
					wl.acked = append(wl.acked, ackedWrite{key, val, st, start, end})
					wl.maxLat = max(wl.maxLat, end.Sub(start))
				}
				wl.mu.Unlock()
				wl.n.Add(1)
			}
		}()
	}
	return wl
}

// waitWrites waits until n more writes were answered.
func (wl *workload) waitWrites(t *testing.T, n int64) {
	t.Helper()
	target := wl.n.Load() + n
	testutil.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool { return wl.n.Load() >= target }, "workload stalled at %d writes", wl.n.Load())
}

// ackedSoFar returns the writes acknowledged until now.
func (wl *workload) ackedSoFar() []ackedWrite {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	return slices.Clone(wl.acked)
}

func (wl *workload) stop(t *testing.T) []ackedWrite {
	t.Helper()
	wl.cancel()
	wl.wg.Wait()
	wl.mu.Lock()
	defer wl.mu.Unlock()
	for _, err := range wl.errs {
		t.Errorf("workload: %v", err)
	}
	t.Logf("workload: %d writes acknowledged, slowest %v", len(wl.acked), wl.maxLat)
	return wl.acked
}

// checkAcked reads every acknowledged write back at its tail.
func (c *tcluster) checkAcked(t *testing.T, acked []ackedWrite) {
	t.Helper()
	w := c.client()
	for _, a := range acked {
		v, ok := w.mustGet(t, a.key)
		if !assert.True(t, ok, "acknowledged write of %s lost", a.key) {
			continue
		}
		assert.Equal(t, a.val, v, a.key)
	}
}

// TestChainConcurrentWriters: 8 writers x 200 writes on overlapping keys of
// several partitions. Afterwards the members agree and each key holds a value
// no later acknowledged write superseded.
func TestChainConcurrentWriters(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	var keys []string
	for _, p := range []int{0, 3, 7, 12} {
		keys = append(keys, keysIn(p, 5, "conc")...)
	}
	const writers, perWriter = 8, 200
	var mu sync.Mutex
	byKey := map[string][]ackedWrite{}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := c.client()
			for i := range perWriter {
				key := keys[(g*7+i)%len(keys)]
				val := fmt.Sprintf("g%d-i%d", g, i)
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				st, err := w.put(ctx, key, val)
				cancel()
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				byKey[key] = append(byKey[key], ackedWrite{key, val, st, start, time.Now()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.waitConverged(chain3, allPartitions(), 10*time.Second)

	w := c.client()
	total := 0
	for key, ws := range byKey {
		total += len(ws)
		v, ok := w.mustGet(t, key)
		require.True(t, ok, key)
		// The final value is a write that no other write to the key began
		// after it was acknowledged.
		var final *ackedWrite
		for i := range ws {
			if ws[i].val == v {
				final = &ws[i]
			}
		}
		require.NotNil(t, final, "%s holds %q, which no acknowledged write wrote", key, v)
		for _, o := range ws {
			assert.False(t, o.start.After(final.end), "%s: %q was overwritten by %q, acknowledged earlier", key, o.val, v)
		}
		// Exactly one write of each key created it.
		sort.Slice(ws, func(i, j int) bool { return ws[i].start.Before(ws[j].start) })
		created := 0
		for _, o := range ws {
			if o.status == kvpb.Status_SUCCESS {
				created++
			}
		}
		assert.Equal(t, 1, created, "%s created %d times", key, created)
	}
	assert.Equal(t, writers*perWriter, total)
	// One applied seq per write: nothing was applied twice or skipped.
	var seqs uint64
	for _, d := range c.digest("s3", allPartitions()...) {
		seqs += d.AppliedSeq
	}
	assert.EqualValues(t, writers*perWriter, seqs)
}
