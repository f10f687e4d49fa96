//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadConfig describes a write load: workers write unique keys, and every
// hotEvery-th write of a worker overwrites one of its own hot keys instead
// (each hot key has a single writer, so its writes are sequential).
type loadConfig struct {
	prefix    string
	workers   int
	hot       int           // hot keys per worker
	hotEvery  int           // 0: no overwrites
	valueSize int           // bytes per value (at least the header)
	opTimeout time.Duration // deadline of one Put, the library's retries included
	interval  time.Duration // per worker, between the starts of two writes; 0: closed loop
}

// writerLog is what one worker saw. Only that worker writes it until the
// load is stopped.
type writerLog struct {
	acked     map[string]string    // unique key -> acknowledged value
	maybe     map[string]string    // unique key -> value whose write failed (may have applied)
	hotAcked  map[string]string    // hot key -> last acknowledged value
	hotMaybe  map[string][]string  // hot key -> values whose write failed
	latencies []time.Duration      // of acknowledged writes
	errs      map[string]int       // failed writes by kind
	ackAt     map[string]time.Time // key -> when its (last) write was acknowledged
}

// writeLoad runs the writers of a loadConfig until stop.
type writeLoad struct {
	cfg  loadConfig
	cli  *kvclient.Client
	logs []*writerLog
	hist *history // when set, lost writes are explained with their partition's chain history

	stopping atomic.Bool
	acks     atomic.Int64
	fails    atomic.Int64
	lastAck  atomic.Int64 // unix nanos of the latest acknowledgement
	wg       sync.WaitGroup
	began    time.Time
	elapsed  time.Duration

	mu         sync.Mutex // guards errSamples
	errSamples []string
}

// startWriteLoad starts the writers; stop ends them.
func startWriteLoad(t *testing.T, cli *kvclient.Client, cfg loadConfig) *writeLoad {
	t.Helper()
	l := &writeLoad{cfg: cfg, cli: cli, began: time.Now()}
	for w := range cfg.workers {
		lg := &writerLog{acked: map[string]string{}, maybe: map[string]string{}, hotAcked: map[string]string{},
			hotMaybe: map[string][]string{}, errs: map[string]int{}, ackAt: map[string]time.Time{}}
		l.logs = append(l.logs, lg)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(w, lg)
		}()
	}
	// Stop the writers also when the test fails early.
	t.Cleanup(func() { l.stopping.Store(true); l.wg.Wait() })
	return l
}

func (l *writeLoad) hotKey(w, j int) string { return fmt.Sprintf("%s-hot-%d-%d", l.cfg.prefix, w, j) }

func (l *writeLoad) value(w, n int) string {
	v := fmt.Sprintf("%s|w%d|n%d|", l.cfg.prefix, w, n)
	if len(v) < l.cfg.valueSize {
		v += strings.Repeat(string(rune('a'+n%26)), l.cfg.valueSize-len(v))
	}
	return v
}

func (l *writeLoad) run(w int, lg *writerLog) {
	next := time.Now()
	for n := 0; !l.stopping.Load(); n++ {
		if l.cfg.interval > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(l.cfg.interval)
			if behind := time.Until(next); behind < -time.Second {
				next = time.Now() // do not burst after a stall
			}
		}
		hot := l.cfg.hotEvery > 0 && l.cfg.hot > 0 && n%l.cfg.hotEvery == l.cfg.hotEvery-1
		key := fmt.Sprintf("%s-u-%d-%d", l.cfg.prefix, w, n)
		if hot {
			key = l.hotKey(w, (n/l.cfg.hotEvery)%l.cfg.hot)
		}
		val := l.value(w, n)
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.opTimeout)
		began := time.Now()
		_, err := l.cli.Put(ctx, key, []byte(val))
		took := time.Since(began)
		cancel()
		switch {
		case err == nil && hot:
			lg.hotAcked[key] = val
		case err == nil:
			lg.acked[key] = val
		case hot:
			lg.hotMaybe[key] = append(lg.hotMaybe[key], val)
		default:
			lg.maybe[key] = val
		}
		if err == nil {
			lg.ackAt[key] = time.Now()
			lg.latencies = append(lg.latencies, took)
			l.acks.Add(1)
			l.lastAck.Store(time.Now().UnixNano())
			continue
		}
		kind := "other"
		switch {
		case errors.Is(err, kvclient.ErrUnknownOutcome):
			kind = "unknown-outcome"
		case errors.Is(err, kvclient.ErrUnavailable):
			kind = "unavailable"
		}
		lg.errs[kind]++
		l.fails.Add(1)
		l.mu.Lock()
		if len(l.errSamples) < 10 {
			l.errSamples = append(l.errSamples, fmt.Sprintf("%s put %s after %v: %v (%s)",
				time.Now().Format("15:04:05.000"), key, took.Round(time.Millisecond), err, where(l.cli, key)))
		}
		l.mu.Unlock()
	}
}

// waitAcks waits until at least n writes were acknowledged.
func (l *writeLoad) waitAcks(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, 10*time.Millisecond, func() bool { return l.acks.Load() >= n },
		"%d writes acknowledged (got %d, %d failed)", n, l.acks.Load(), l.fails.Load())
}

// stop ends the writers (each finishes its current write) and logs a summary.
func (l *writeLoad) stop(t *testing.T) {
	t.Helper()
	if l.stopping.Swap(true) {
		return
	}
	l.wg.Wait()
	l.elapsed = time.Since(l.began)
	errs := l.errors()
	lat := l.latencies()
	t.Logf("load %s: %d workers, %d writes acknowledged in %v (%.0f/s), %d failed %v; latency p50 %v p99 %v max %v",
		l.cfg.prefix, l.cfg.workers, len(lat), l.elapsed.Round(time.Millisecond), rate(len(lat), l.elapsed),
		l.fails.Load(), errs, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 1))
	for _, s := range l.errSamples {
		t.Logf("load %s: failed write: %s", l.cfg.prefix, s)
	}
}

// errors returns the failed writes by kind.
func (l *writeLoad) errors() map[string]int {
	out := map[string]int{}
	for _, lg := range l.logs {
		for k, n := range lg.errs {
			out[k] += n
		}
	}
	return out
}

func (l *writeLoad) latencies() []time.Duration {
	var out []time.Duration
	for _, lg := range l.logs {
		out = append(out, lg.latencies...)
	}
	return out
}

// verify reads back every key the load wrote (after stop): an acknowledged
// write must be readable with its value (a hot key: its last acknowledged
// value, or one whose write failed, since a failed write may have applied
// at any time); a failed unique write may be missing or present with its
// value. Lost writes fail the test.
func (l *writeLoad) verify(ctx context.Context, t *testing.T, cli *kvclient.Client) {
	t.Helper()
	type item struct {
		ackAt     time.Time
		key, want string
		alt       []string // other acceptable values
		missingOK bool
		unique    bool // a unique key whose write failed
	}
	var items []item
	for _, lg := range l.logs {
		for k, v := range lg.acked {
			items = append(items, item{key: k, want: v, ackAt: lg.ackAt[k]})
		}
		for k, v := range lg.maybe {
			items = append(items, item{key: k, want: v, missingOK: true, unique: true})
		}
		for k, alt := range lg.hotMaybe {
			if _, ok := lg.hotAcked[k]; !ok {
				items = append(items, item{key: k, want: alt[len(alt)-1], alt: alt, missingOK: true})
			}
		}
		for k, v := range lg.hotAcked {
			items = append(items, item{key: k, want: v, alt: lg.hotMaybe[k], ackAt: lg.ackAt[k]})
		}
	}
	var (
		mu                   sync.Mutex // guards the counters and rep
		rep                  placementReport
		lost, failedApplied  int
		failedMissing, reads int
		explained            []string
	)
	explain := func(it item) {
		if l.hist == nil || len(explained) >= 3 {
			return
		}
		p := cli.Ring().PartitionOf(nil, []byte(it.key))
		ch, epoch := l.hist.chainAt(p, it.ackAt)
		explained = append(explained, fmt.Sprintf("%s (partition %d) acknowledged at %s, when the chain was %v v%d learner %q (epoch %d); history:\n%s",
			it.key, p, it.ackAt.Format("15:04:05.000"), ch.Members, ch.Version, ch.Learner, epoch,
			l.hist.explain(p, it.ackAt.Add(-5*time.Second), it.ackAt.Add(20*time.Second))))
	}
	began := time.Now()
	err := framework.ForEach(ctx, len(items), 16, func(ctx context.Context, i int) error {
		it := items[i]
		var got []byte
		var err error
		for range 3 { // a read may meet a reconfiguration; the library retries within its deadline
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			got, err = cli.Get(rctx, it.key)
			cancel()
			if err == nil || errIsNotFound(err) {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		reads++
		switch {
		case errIsNotFound(err) && it.missingOK:
			failedMissing++
		case errIsNotFound(err):
			lost++
			rep.add("LOST: %s (acknowledged %.40q... at %s) reads as missing (%s)", it.key, it.want,
				it.ackAt.Format("15:04:05.000"), where(cli, it.key))
			explain(it)
		case err != nil:
			rep.add("get %s: %v (%s)", it.key, err, where(cli, it.key))
		case string(got) == it.want || slices.Contains(it.alt, string(got)):
			if it.unique {
				failedApplied++
			}
		default:
			lost++
			rep.add("WRONG: %s = %.40q..., want %.40q... (acknowledged at %s) or one of %d failed writes (%s)",
				it.key, got, it.want, it.ackAt.Format("15:04:05.000"), len(it.alt), where(cli, it.key))
			explain(it)
		}
		return nil
	})
	require.NoError(t, err)
	t.Logf("verify %s: read %d keys in %v: %d acknowledged writes checked; of the failed unique writes %d applied, %d did not",
		l.cfg.prefix, reads, time.Since(began).Round(time.Millisecond), reads-failedApplied-failedMissing, failedApplied, failedMissing)
	if rep.count > 0 {
		t.Errorf("verify %s: %d of %d keys wrong (%d acknowledged writes lost); first ones:\n%s",
			l.cfg.prefix, rep.count, len(items), lost, strings.Join(rep.errs, "\n"))
		for _, e := range explained {
			t.Logf("lost write: %s", e)
		}
	}
}

// pct returns the q-quantile (0..1) of ds, nearest rank; 0 for none.
func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)].Round(10 * time.Microsecond)
}

// firstSuccess starts op every `every`, each with its own opTimeout deadline
// and at most 64 in flight, from now until one succeeds or limit has passed
// since since. It returns the time from since to the end of the first
// successful op.
func firstSuccess(since time.Time, every, opTimeout, limit time.Duration, op func(ctx context.Context) error) (time.Duration, bool) {
	ctx, cancel := context.WithDeadline(context.Background(), since.Add(limit))
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first time.Time
	)
	done := make(chan struct{})
	var once sync.Once
	sem := make(chan struct{}, 64)
	tick := time.NewTicker(every)
	defer tick.Stop()
loop:
	for {
		select {
		case sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				octx, ocancel := context.WithTimeout(ctx, opTimeout)
				err := op(octx)
				ocancel()
				if err == nil {
					end := time.Now()
					mu.Lock()
					if first.IsZero() || end.Before(first) {
						first = end
					}
					mu.Unlock()
					once.Do(func() { close(done) })
				}
			}()
		case <-done:
			break loop
		case <-ctx.Done():
			break loop
		}
		select {
		case <-tick.C:
		case <-done:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if first.IsZero() {
		return 0, false
	}
	return first.Sub(since), true
}

// keyInPartition returns the first key prefix<i> that falls in partition p.
func keyInPartition(r *ringmeta.Ring, p int, prefix string) string {
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		if r.PartitionOf(nil, []byte(k)) == p {
			return k
		}
	}
}

// partitionsOf lists the partitions in whose chain id has the given role:
// "head", "tail", or "member" (any position).
func partitionsOf(r *ringmeta.Ring, id, role string) []int {
	var out []int
	for p, ch := range r.Chains {
		switch i := ch.Index(id); {
		case i < 0:
		case role == "member",
			role == "head" && i == 0,
			role == "tail" && i == len(ch.Members)-1:
			out = append(out, p)
		}
	}
	return out
}

// inChains reports whether id is a member or learner of any chain.
func inChains(r *ringmeta.Ring, id string) bool {
	for _, ch := range r.Chains {
		if ch.Index(id) >= 0 || ch.Learner == id {
			return true
		}
	}
	return false
}

// waitRing polls the ring through cli until cond holds, and returns it.
func waitRing(t *testing.T, cli *kvclient.Client, timeout time.Duration, cond func(*ringmeta.Ring) bool, msg string, args ...any) *ringmeta.Ring {
	t.Helper()
	var last *ringmeta.Ring
	ok := testutil.WaitUntil(timeout, 20*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := cli.RefreshRing(ctx)
		if err != nil {
			return false
		}
		last = r
		return cond(r)
	})
	if !ok {
		epoch := uint64(0)
		if last != nil {
			epoch = last.Epoch
		}
		t.Fatalf("not true within %v (ring epoch %d): "+msg, append([]any{timeout, epoch}, args...)...)
	}
	return last
}

// waitConverged polls `ecs status --json` until every chain has R active
// members and nothing moves (StatusJSON.Converged); it fails the test with
// the last status after timeout.
func waitConverged(t *testing.T, c *framework.Cluster, timeout time.Duration) (framework.StatusJSON, time.Duration) {
	t.Helper()
	return waitConvergedAnd(t, c, timeout, nil)
}

// waitConvergedAnd is waitConverged with an extra condition on the status,
// which returns "" when it holds and what is missing otherwise.
func waitConvergedAnd(t *testing.T, c *framework.Cluster, timeout time.Duration, also func(framework.StatusJSON) string) (framework.StatusJSON, time.Duration) {
	t.Helper()
	began := time.Now()
	var last framework.StatusJSON
	var why string
	ok := testutil.WaitUntil(timeout, 250*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			why = err.Error()
			return false
		}
		last = st
		var done bool
		done, why = st.Converged()
		if done && also != nil {
			why = also(st)
			done = why == ""
		}
		return done
	})
	took := time.Since(began)
	if !ok {
		t.Fatalf("cluster not converged within %v: %s\nlast status: %s\n%s", timeout, why, last.Summary(), last.Raw)
	}
	t.Logf("converged in %v: %s", took.Round(time.Millisecond), last.Summary())
	return last, took
}

// assertChainsFull checks that every chain of r has R distinct active members
// and no learner.
func assertChainsFull(t *testing.T, r *ringmeta.Ring) {
	t.Helper()
	active := map[string]bool{}
	for _, s := range r.Servers {
		active[s.ID] = s.State == ringmeta.StateActive
	}
	var rep placementReport
	for p, ch := range r.Chains {
		switch {
		case len(ch.Members) != r.Replicas:
			rep.add("partition %d: chain %v has %d members, want %d", p, ch.Members, len(ch.Members), r.Replicas)
		case ch.Learner != "":
			rep.add("partition %d: learner %s", p, ch.Learner)
		case slices.ContainsFunc(ch.Members, func(id string) bool { return !active[id] }):
			rep.add("partition %d: chain %v holds a server that is not active", p, ch.Members)
		}
	}
	if rep.count > 0 {
		t.Errorf("ring epoch %d: %d chains not full:\n%s", r.Epoch, rep.count, strings.Join(rep.errs, "\n"))
	}
}

// assertCheckClean runs `ecs check` and requires exit 0 and no difference.
func assertCheckClean(t *testing.T, c *framework.Cluster, h *history) {
	t.Helper()
	began := time.Now()
	rep := c.Check(t)
	t.Logf("ecs check: exit %d in %v: epoch %d, %d partitions, %d servers, skipped %v, %d differences",
		rep.ExitCode, time.Since(began).Round(time.Millisecond), rep.Epoch, rep.Partitions, rep.Servers, rep.Skipped, len(rep.Differences))
	if rep.ExitCode != 0 || len(rep.Differences) > 0 {
		diffs := rep.Differences[:min(len(rep.Differences), 10)]
		var lines []string
		for _, d := range diffs {
			lines = append(lines, string(d))
		}
		t.Errorf("ecs check exited %d with %d differences; stderr %q; first ones:\n%s",
			rep.ExitCode, len(rep.Differences), rep.Stderr, strings.Join(lines, "\n"))
		for _, d := range rep.Differences[:min(len(rep.Differences), 3)] {
			var diff struct {
				Partition int `json:"partition"`
			}
			if json.Unmarshal(d, &diff) == nil && h != nil {
				t.Logf("history of partition %d (last 30 chain changes):\n%s", diff.Partition, h.explainLast(diff.Partition, 30))
			}
		}
	}
}

// replicasAdded counts the (partition, server) pairs in after that were not
// in before: the partition replicas a reconfiguration copied.
func replicasAdded(before, after *ringmeta.Ring) int {
	n := 0
	for p := range after.Chains {
		for _, id := range after.Chains[p].Members {
			if p >= len(before.Chains) || before.Chains[p].Index(id) < 0 {
				n++
			}
		}
	}
	return n
}

// replicasPerServer counts each server's chain memberships.
func replicasPerServer(r *ringmeta.Ring) map[string]int {
	out := map[string]int{}
	for _, ch := range r.Chains {
		for _, id := range ch.Members {
			out[id]++
		}
	}
	return out
}

// transferBytes scrapes ecskv_transfer_received_bytes_total from every
// server of st, by server id.
func transferBytes(t *testing.T, st framework.StatusJSON) map[string]float64 {
	t.Helper()
	return scrapeCounter(t, st, "ecskv_transfer_received_bytes_total")
}

// sumCounter scrapes counter name from every active server of st and sums it.
func sumCounter(t *testing.T, st framework.StatusJSON, name string) float64 {
	t.Helper()
	var sum float64
	for _, v := range scrapeCounter(t, st, name) {
		sum += v
	}
	return sum
}

// scrapeCounter scrapes counter name (every series of it, summed) from
// every active server of st, by server id.
func scrapeCounter(t *testing.T, st framework.StatusJSON, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	cl := http.Client{Timeout: 5 * time.Second}
	for _, s := range st.Servers {
		if s.State != "active" || s.Metrics == "" {
			continue
		}
		resp, err := cl.Get("http://" + s.Metrics + "/metrics")
		if err != nil {
			t.Logf("scrape %s: %v", s.ID, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
				continue
			}
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				out[s.ID] += v
			}
		}
	}
	return out
}

// bytesReceived sums the growth of the counters between two scrapes over the
// servers in both.
func bytesReceived(before, after map[string]float64) float64 {
	var sum float64
	for id, v := range after {
		sum += v - before[id] // a server new in after started from 0
	}
	return sum
}

// envInt reads a positive integer from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "$%s", name)
	require.Positive(t, n, "$%s", name)
	return n
}

// assertLive checks that a server is listed active by `ecs status`.
func assertActive(t *testing.T, st framework.StatusJSON, id string) framework.ServerStatus {
	t.Helper()
	s, ok := st.Server(id)
	assert.True(t, ok, "status lists %s", id)
	assert.Equal(t, "active", s.State, "%s state", id)
	return s
}
