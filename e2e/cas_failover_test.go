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
	counter        string
	lists          []string
	incr, swappers []*kvclient.Client
	gen            int // runs so far, to keep tokens unique across pauses

	stopping atomic.Bool
	wg       sync.WaitGroup

	incrAcked, incrUnknown, incrFailed atomic.Int64
	incrWrong                          atomic.Int64 // ErrNotInteger or ErrOverflow: impossible here
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
	for range incrementers {
		l.incr = append(l.incr, c.Client(t))
	}
	for range swappers {
		l.swappers = append(l.swappers, c.Client(t))
	}
	t.Cleanup(func() { l.stopping.Store(true); l.wg.Wait() }) // also when the test fails early
	l.resume()
	return l
}

// resume starts the workers.
func (l *casLoad) resume() {
	l.gen++
	for w, cli := range l.incr {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.increment(cli, w) }()
	}
	for w, cli := range l.swappers {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.swap(cli, w, l.gen, l.lists[w%len(l.lists)]) }()
	}
}

// pause stops the workers, each after its current call.
func (l *casLoad) pause() {
	l.stopping.Store(true)
	l.wg.Wait()
	l.stopping.Store(false)
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
		case errors.Is(err, kvclient.ErrNotInteger) || errors.Is(err, kvclient.ErrOverflow):
			l.incrWrong.Add(1) // the counter only ever holds integers written by Incr
			l.sample("incrementer %d: %v", w, err)
		default:
			l.incrFailed.Add(1)
			l.sample("incrementer %d: %v", w, err)
		}
	}
}

// swap appends the tokens g<gen>.w<w>.<i> to list, each until it is
// acknowledged or its outcome is unknown. A token refused outright was not
// written, so it is tried again: were it written after all, it would show
// twice.
func (l *casLoad) swap(cli *kvclient.Client, w, gen int, list string) {
	for i := 0; !l.stopping.Load(); i++ {
		token := fmt.Sprintf("g%d.w%d.%d", gen, w, i)
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
	return fmt.Sprintf("increments %d acknowledged, %d unknown, %d refused (%d not an integer or overflowing); swaps %d acknowledged, %d conflicts, %d unknown, %d refused",
		l.incrAcked.Load(), l.incrUnknown.Load(), l.incrFailed.Load()+l.incrWrong.Load(), l.incrWrong.Load(),
		l.casAcked.Load(), l.casConflicts.Load(), l.casUnknown.Load(), l.casFailed.Load())
}

func (l *casLoad) stop(t *testing.T) {
	t.Helper()
	l.pause()
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
		n, acked, unknown, n-acked, l.incrFailed.Load()+l.incrWrong.Load())
	assert.Zero(t, l.incrWrong.Load(), "increments that found the counter not an integer, or overflowing")
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
// append to shared lists by compare-and-swap while the servers of their
// partition are killed -9 and restarted, in four rounds: the head, after
// the ECS failed it over (it rejoins and takes replicas back under the
// load); the head again, restarted at once, before the ECS notices; every
// member of the chain at once; and every member again while the load
// pauses, so that the first writes after the restart meet freshly started
// servers. Every acknowledged increment and
// swap must count exactly once: no increment applied twice or lost, no
// swap lost or duplicated (request ids make retries across the failover
// exactly once); and no increment may find the counter not an integer.
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
	for _, round := range []struct {
		name          string
		wholeChain    bool // kill every member, not only the head
		afterFailover bool // restart once the ECS took the victims out of every chain
		quiet         bool // pause the load from before the kill until the restart
	}{
		{name: "head, restarted after the failover", afterFailover: true},
		{name: "head, restarted at once"},
		{name: "whole chain, restarted at once", wholeChain: true},
		{name: "whole chain, restarted at once, no load meanwhile", wholeChain: true, quiet: true},
	} {
		r, err := cli.RefreshRing(ctx)
		require.NoError(t, err)
		victims := r.Chain(p).Members
		if !round.wholeChain {
			victims = victims[:1]
		}
		if round.quiet {
			l.pause()
		}
		t.Logf("%s: kill -9 %v, chain of partition %d: %s", round.name, victims, p, l.summary())
		killedAt := time.Now()
		argv := map[string][]string{}
		for _, id := range victims {
			argv[id] = c.KillServer(t, id)
		}
		if round.afterFailover {
			l.waitProgress(t, 100, 20, resumeWithin, "after the kill")
			t.Logf("progress %v after the kill: %s", time.Since(killedAt).Round(time.Millisecond), l.summary())
			for _, id := range victims {
				awaitRemoved(t, cli, id, killedAt)
			}
		}
		for _, id := range victims {
			restartActive(t, c, id, argv[id])
		}
		t.Logf("%v active again %v after the kill: %s", victims, time.Since(killedAt).Round(time.Millisecond), l.summary())
		if round.quiet {
			l.resume()
		}
		// The load runs on while the servers take their replicas back.
		waitConverged(t, c, convergeWithin)
		l.waitProgress(t, 100, 20, resumeWithin, "after the restart")
	}

	l.stop(t)
	waitConverged(t, c, convergeWithin)
	l.verify(ctx, t, cli)
	assertCheckClean(t, c, nil)
	t.Logf("TestCASUnderFailover took %v", time.Since(began).Round(time.Millisecond))
}

// restartActive restarts the killed server id with its command line argv
// and waits until the ECS has it active as a new process.
func restartActive(t *testing.T, c *framework.Cluster, id string, argv []string) {
	t.Helper()
	proc := c.RestartServer(t, id, argv)
	var last string
	ok := testutil.WaitUntil(removedWithin, 100*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			return false
		}
		last = st.Summary()
		s, ok := st.Server(id)
		return ok && s.State == "active" && s.PID == proc.PID()
	})
	require.True(t, ok, "the restarted %s active as pid %d; last status: %s", id, proc.PID(), last)
}
