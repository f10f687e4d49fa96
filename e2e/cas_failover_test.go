//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// casOpTimeout bounds each call of the CAS load; the library retries
// within it through a failover.
const casOpTimeout = 5 * time.Second

// casLoad is the load of TestCASUnderFailover: incrementers each Incr one
// shared counter by 1 in a loop; swappers each append unique tokens to one
// of the shared lists by compare-and-swap (read value and version, Put
// IfVersion, read again on ErrConditionFailed). Every worker has its own
// client, so its own request ids.
type casLoad struct {
	counter string
	lists   []string

	stopping atomic.Bool
	wg       sync.WaitGroup

	incrAcked, incrUnknown, incrFailed atomic.Int64
	casAcked, casConflicts, casUnknown atomic.Int64
	casFailed                          atomic.Int64 // reads and writes refused outright (not applied)

	mu      sync.Mutex        // guards the fields below
	acked   map[string]string // token -> list: the swap was acknowledged
	maybe   map[string]string // token -> list: the swap's outcome is unknown
	samples []string          // the first errors, for the log
}

// unknownOutcome reports an error after which a write may have been
// applied: the library says so, or the caller's deadline cut it short.
func unknownOutcome(err error) bool {
	return errors.Is(err, kvclient.ErrUnknownOutcome) || errors.Is(err, context.DeadlineExceeded)
}

func startCASLoad(t *testing.T, c *framework.Cluster, counter string, lists []string, incrementers, swappers int) *casLoad {
	t.Helper()
	l := &casLoad{counter: counter, lists: lists, acked: map[string]string{}, maybe: map[string]string{}}
	for w := range incrementers {
		cli := c.Client(t)
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.increment(cli, w) }()
	}
	for w := range swappers {
		cli := c.Client(t)
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.swap(cli, w, lists[w%len(lists)]) }()
	}
	t.Cleanup(func() { l.stopping.Store(true); l.wg.Wait() }) // also when the test fails early
	return l
}

func (l *casLoad) sample(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) < 10 {
		l.samples = append(l.samples, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (l *casLoad) increment(cli *kvclient.Client, w int) {
	for !l.stopping.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), casOpTimeout)
		_, err := cli.Incr(ctx, l.counter, 1)
		cancel()
		switch {
		case err == nil:
			l.incrAcked.Add(1)
		case unknownOutcome(err):
			l.incrUnknown.Add(1)
			l.sample("incrementer %d: %v", w, err)
		default:
			l.incrFailed.Add(1)
			l.sample("incrementer %d: %v", w, err)
		}
	}
}

// swap appends the tokens w<w>.<i> to list, each until it is
// acknowledged or its outcome is unknown. A token refused outright was not
// written, so it is tried again: were it written after all, it would show
// twice.
func (l *casLoad) swap(cli *kvclient.Client, w int, list string) {
	for i := 0; !l.stopping.Load(); i++ {
		token := fmt.Sprintf("w%d.%d", w, i)
		settled := false
		for !settled && !l.stopping.Load() {
			settled = l.swapOnce(cli, w, list, token)
		}
	}
}

// swapOnce makes one attempt to append token to list and reports whether
// the token is settled: acknowledged, or of unknown outcome.
func (l *casLoad) swapOnce(cli *kvclient.Client, w int, list, token string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), casOpTimeout)
	defer cancel()
	var m kvclient.Meta
	old, err := cli.Get(ctx, list, kvclient.WithMeta(&m))
	if errors.Is(err, kvclient.ErrNotFound) {
		old, m.Version, err = nil, 0, nil
	}
	if err != nil {
		l.casFailed.Add(1)
		l.sample("swapper %d: read %s: %v", w, list, err)
		return false
	}
	_, err = cli.Put(ctx, list, append(old, token+" "...), kvclient.IfVersion(m.Version))
	switch {
	case err == nil:
		l.casAcked.Add(1)
		l.mu.Lock()
		l.acked[token] = list
		l.mu.Unlock()
		return true
	case errors.Is(err, kvclient.ErrConditionFailed):
		l.casConflicts.Add(1)
		return false
	case unknownOutcome(err):
		l.casUnknown.Add(1)
		l.mu.Lock()
		l.maybe[token] = list
		l.mu.Unlock()
		l.sample("swapper %d: put %s %s: %v", w, list, token, err)
		return true
	}
	l.casFailed.Add(1)
	l.sample("swapper %d: put %s %s: %v", w, list, token, err)
	return false
}

// waitProgress waits until incr more increments and cas more swaps than
// now are acknowledged.
func (l *casLoad) waitProgress(t *testing.T, incr, cas int64, within time.Duration, what string) {
	t.Helper()
	i0, c0 := l.incrAcked.Load(), l.casAcked.Load()
	testutil.Eventually(t, within, 10*time.Millisecond, func() bool {
		return l.incrAcked.Load() >= i0+incr && l.casAcked.Load() >= c0+cas
	}, "%s: %d increments and %d swaps acknowledged (got %d and %d); %s", what, incr, cas,
		l.incrAcked.Load()-i0, l.casAcked.Load()-c0, l.summary())
}

func (l *casLoad) summary() string {
	return fmt.Sprintf("increments %d acknowledged, %d unknown, %d refused; swaps %d acknowledged, %d conflicts, %d unknown, %d refused",
		l.incrAcked.Load(), l.incrUnknown.Load(), l.incrFailed.Load(),
		l.casAcked.Load(), l.casConflicts.Load(), l.casUnknown.Load(), l.casFailed.Load())
}

func (l *casLoad) stop(t *testing.T) {
	t.Helper()
	l.stopping.Store(true)
	l.wg.Wait()
	t.Logf("load stopped: %s", l.summary())
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) > 0 {
		t.Logf("first errors:\n%s", strings.Join(l.samples, "\n"))
	}
}

// verify reads the counter and the lists: the counter counts every
// acknowledged increment once and at most the unknown ones besides; each
// list holds every token acknowledged on it exactly once, and no token
// that was neither acknowledged nor of unknown outcome.
func (l *casLoad) verify(ctx context.Context, t *testing.T, cli *kvclient.Client) {
	t.Helper()
	v, err := cli.Get(ctx, l.counter)
	require.NoError(t, err)
	n, err := strconv.ParseInt(string(v), 10, 64)
	require.NoError(t, err, "counter %q", v)
	acked, unknown := l.incrAcked.Load(), l.incrUnknown.Load()
	t.Logf("counter = %d: %d increments acknowledged, %d of unknown outcome (%d of them applied), %d refused",
		n, acked, unknown, n-acked, l.incrFailed.Load())
	assert.GreaterOrEqual(t, n, acked, "an acknowledged increment was lost")
	assert.LessOrEqual(t, n, acked+unknown, "an increment was applied twice, or a refused one applied")

	l.mu.Lock()
	defer l.mu.Unlock()
	present := 0
	for _, list := range l.lists {
		v, err := cli.Get(ctx, list)
		require.NoError(t, err)
		seen := map[string]int{}
		for _, tok := range strings.Fields(string(v)) {
			seen[tok]++
		}
		for tok, k := range seen {
			switch {
			case k > 1:
				t.Errorf("%s holds token %s %d times", list, tok, k)
			case l.acked[tok] != list && l.maybe[tok] != list:
				t.Errorf("%s holds token %s, whose swap was refused (or never made there)", list, tok)
			}
		}
		for tok, at := range l.acked {
			if at == list && seen[tok] == 0 {
				t.Errorf("%s lost the acknowledged token %s", list, tok)
			}
		}
		present += len(seen)
	}
	t.Logf("lists hold %d tokens: %d acknowledged, %d of %d of unknown outcome", present, len(l.acked),
		present-len(l.acked), len(l.maybe))
}

// TestCASUnderFailover: several clients increment a shared counter and
// append to shared lists by compare-and-swap while the head of their
// partition is killed -9 and restarted, twice: once after the ECS failed it
// over (it rejoins and takes replicas back under the load), then at once,
// before the ECS notices (it recovers its log and dedup records from
// disk). Every acknowledged increment and swap must count exactly once: no
// increment applied twice or lost, no swap lost or duplicated (request ids
// make retries across the failover exactly once).
func TestCASUnderFailover(t *testing.T) {
	began := time.Now()
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	const counter = "casf-counter"
	p := r.PartitionOf(nil, []byte(counter))
	lists := []string{keyInPartition(r, p, "casf-list-a-"), keyInPartition(r, p, "casf-list-b-")}
	t.Logf("counter %s and lists %v in partition %d, chain %v", counter, lists, p, r.Chain(p).Members)

	l := startCASLoad(t, c, counter, lists, 4, 4)
	l.waitProgress(t, 300, 60, 30*time.Second, "before the kill")
	for cycle, afterFailover := range []bool{true, false} {
		r, err := cli.RefreshRing(ctx)
		require.NoError(t, err)
		victim := r.Chain(p).Head()
		old, ok := c.Status(t).Server(victim)
		require.True(t, ok)
		t.Logf("cycle %d: kill -9 %s, head of partition %d: %s", cycle+1, victim, p, l.summary())
		argv := c.KillServer(t, victim)
		killedAt := time.Now()
		if afterFailover {
			l.waitProgress(t, 100, 20, resumeWithin, "after the kill")
			t.Logf("progress %v after the kill: %s", time.Since(killedAt).Round(time.Millisecond), l.summary())
			awaitRemoved(t, cli, victim, killedAt)
		}
		proc := c.RestartServer(t, victim, argv)
		testutil.Eventually(t, removedWithin, 100*time.Millisecond, func() bool {
			st, err := c.StatusE(t)
			s, ok := st.Server(victim)
			return err == nil && ok && s.State == "active" && s.PID == proc.PID() && s.Incarnation != old.Incarnation
		}, "the restarted %s active as a new incarnation", victim)
		t.Logf("%s active again %v after the kill: %s", victim, time.Since(killedAt).Round(time.Millisecond), l.summary())
		// The load runs on while the server takes its replicas back.
		waitConverged(t, c, convergeWithin)
		l.waitProgress(t, 100, 20, resumeWithin, "after the restart")
	}

	l.stop(t)
	waitConverged(t, c, convergeWithin)
	l.verify(ctx, t, cli)
	assertCheckClean(t, c, nil)
	t.Logf("TestCASUnderFailover took %v", time.Since(began).Round(time.Millisecond))
}
