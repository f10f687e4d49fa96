package framework

import (
	"context"
	"fmt"
	"github.com/ecskv/ecskv/common/testutil"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/kvclient"
)

// Recovery bounds after a whole-cluster restart (the power cut of
// kill-all and TestWholeClusterPowerCut): once the cluster is ready again,
// every fresh key takes a write within FreshWriteWithin and `ecs check`
// reports no difference within CheckCleanWithin.
const (
	FreshKeys        = 64
	FreshWriteWithin = 10 * time.Second
	CheckCleanWithin = 10 * time.Second
)

// FreshWrites puts a value to each of n keys never written before
// (prefix0..prefix<n-1>), all at once, each within timeout. It returns how
// many were acknowledged, how long the slowest acknowledged one took, and,
// when some were not, a description of those keys grouped by partition and
// chain (from the client's ring after the attempts) with each group's first
// error.
func FreshWrites(cli *kvclient.Client, prefix string, n int, timeout time.Duration) (acked int, slowest time.Duration, problem string) {
	errs := make([]error, n)
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			began := time.Now()
			_, errs[i] = cli.Put(ctx, fmt.Sprintf("%s%d", prefix, i), []byte("fresh"))
			took[i] = time.Since(began)
		}()
	}
	wg.Wait()
	type group struct {
		keys  []string
		first error
	}
	groups := map[string]*group{}
	for i, err := range errs {
		if err == nil {
			acked++
			slowest = max(slowest, took[i])
			continue
		}
		key := fmt.Sprintf("%s%d", prefix, i)
		w := KeyWhere(cli, key)
		if groups[w] == nil {
			groups[w] = &group{first: err}
		}
		groups[w].keys = append(groups[w].keys, key)
	}
	if acked == n {
		return acked, slowest, ""
	}
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(groups)) {
		g := groups[w]
		parts = append(parts, fmt.Sprintf("%s: %d keys (%s): %v", w, len(g.keys), Shorten(strings.Join(g.keys, " "), 120), g.first))
	}
	return acked, slowest, fmt.Sprintf("%d of %d fresh keys %s* took no write within %v: %s",
		n-acked, n, prefix, timeout, strings.Join(parts, "; "))
}

// KeyWhere names key's partition and chain in the client's ring, refreshed
// first when etcd answers within a few seconds.
func KeyWhere(cli *kvclient.Client, key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := cli.RefreshRing(ctx)
	if err != nil {
		r = cli.Ring()
	}
	p := r.PartitionOf(nil, []byte(key))
	ch := r.Chain(p)
	return fmt.Sprintf("partition %d (chain %v v%d, learner %q, epoch %d)", p, ch.Members, ch.Version, ch.Learner, r.Epoch)
}

// CheckClean runs check (a cluster's `ecs check`) until it exits 0 or
// timeout has passed. It returns the last report, how long it took and,
// when the cluster was not clean in time, what the last run found.
func CheckClean(t testing.TB, check func(testing.TB) CheckJSON, timeout time.Duration) (last CheckJSON, took time.Duration, problem string) {
	t.Helper()
	began := time.Now()
	clean := testutil.WaitUntil(timeout, 200*time.Millisecond, func() bool { last = check(t); return last.ExitCode == 0 })
	took = time.Since(began)
	switch {
	case clean && took <= timeout:
		return last, took, ""
	case clean:
		return last, took, fmt.Sprintf("ecs check clean only after %v (want within %v)", took.Round(time.Millisecond), timeout)
	}
	return last, took, fmt.Sprintf("not clean within %v: %s", timeout, last.Summary(8))
}
