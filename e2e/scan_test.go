//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

const (
	scanKeys      = 3000                  // alice's keys that exist for the whole scan
	scanPage      = 10                    // keys per page
	scanPace      = 25 * time.Millisecond // between pages: the scan outlasts the faults
	scanAddWithin = 5 * time.Minute
)

// scanResult is what a paged scan returned.
type scanResult struct {
	got map[string]string
	err error
}

// scanWrites records every value written (or tried) per key while a scan
// runs, so a returned value can be checked against them.
type scanWrites struct {
	mu   sync.Mutex
	vals map[string]map[string]bool
}

func (w *scanWrites) add(k, v string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vals[k] == nil {
		w.vals[k] = map[string]bool{}
	}
	w.vals[k][v] = true
}

func (w *scanWrites) has(k, v string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.vals[k][v]
}

// TestScanUnderFaults loads alice's and bob's keys on a cluster with
// authentication, then pages through alice's keys ten at a time while her
// keys are overwritten and others come and go, a head is killed -9 and
// `ecs add` rebalances. Every key that existed for the whole scan must come
// back exactly once with a value written to it, and none of bob's.
func TestScanUnderFaults(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(5), framework.WithReplicas(3),
		framework.WithPartitions(64), framework.WithArgs("--auth"))
	for _, u := range []string{"alice", "bob"} {
		addUser(t, c, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	client := func(u string) *kvclient.Client {
		cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials(u, u+"-pw"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	alice, bob := client("alice"), client("bob")
	writes := &scanWrites{vals: map[string]map[string]bool{}}
	stable := func(i int) string { return fmt.Sprintf("k%05d", i) }
	loadKeys(ctx, t, alice, bob, writes, stable)

	stop := make(chan struct{})
	var churned sync.WaitGroup
	churned.Add(1)
	go func() { defer churned.Done(); churn(ctx, alice, writes, stable, stop) }()

	var pages atomic.Int64
	done := make(chan scanResult, 1)
	began := time.Now()
	go func() {
		got, err := pagedScan(ctx, alice, &pages, writes)
		done <- scanResult{got, err}
	}()

	// A head (every server heads some partitions, and is the tail of
	// others), killed once the scan is under way.
	waitPages(t, &pages, 20, done)
	victim := alice.Ring().Chains[0].Head()
	t.Logf("kill -9 %s after %d pages", victim, pages.Load())
	c.KillServer(t, victim)

	waitPages(t, &pages, 60, done)
	t.Logf("ecs add -n 1 after %d pages", pages.Load())
	add := framework.StartProcess(t, framework.ProcessSpec{Name: "ecs add", Path: c.Bin(framework.ECSBin),
		Args: []string{"add", "-n", "1", "--etcd-endpoints", c.EtcdEndpoint(), "--timeout", scanAddWithin.String()}})

	res := <-done
	t.Logf("scan of %d pages took %v", pages.Load(), time.Since(began).Round(time.Millisecond))
	close(stop)
	churned.Wait()
	code, ok := add.Wait(scanAddWithin + 30*time.Second)
	require.True(t, ok, "ecs add still running")
	require.Equal(t, 0, code, "ecs add; stderr:\n%v", add.Stderr())
	c.Track(t)
	require.NoError(t, res.err)

	for i := range scanKeys {
		k := stable(i)
		v, ok := res.got[k]
		require.True(t, ok, "key %s existed for the whole scan and was not returned", k)
		require.True(t, writes.has(k, v), "key %s returned with %q, never written", k, v)
	}
	for k, v := range res.got {
		require.False(t, strings.HasPrefix(k, "bob") || strings.HasPrefix(v, "bob"), "bob's key %s=%s in alice's scan", k, v)
	}
	t.Logf("alice's scan: %d keys (%d existed throughout)", len(res.got), scanKeys)

	// Bob sees his own keys only, through the CLI.
	out := c.KvclientRun(t, framework.RunOptions{Env: []string{"ECSKV_PASSWORD=bob-pw"}}, "--user", "bob", "scan", "--keys-only")
	require.Equal(t, 0, out.ExitCode, out.Stderr)
	lines := strings.Split(strings.TrimSpace(out.Stdout), "\n")
	require.Len(t, lines, 200)
	for _, k := range lines {
		require.True(t, strings.HasPrefix(k, "bob") || strings.HasPrefix(k, "k"), "bob's scan: %q", k)
	}
	require.Contains(t, out.Stderr, "(200 keys)")
}

// loadKeys writes alice's stable keys and bob's keys: 100 of his own and
// 100 under alice's key names, with values marked as his.
func loadKeys(ctx context.Context, t *testing.T, alice, bob *kvclient.Client, w *scanWrites, stable func(int) string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < scanKeys; i += 16 {
				k, v := stable(i), "v1-"+stable(i)
				w.add(k, v)
				if _, err := alice.Put(ctx, k, []byte(v)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	for i := range 100 {
		_, err := bob.Put(ctx, fmt.Sprintf("bob%03d", i), []byte("bob's"))
		require.NoError(t, err)
		_, err = bob.Put(ctx, stable(i), []byte("bob's "+stable(i)))
		require.NoError(t, err)
	}
}

// churn overwrites alice's stable keys and creates and deletes others
// until stop; every value is recorded before it is sent, and failures
// (during the failover) are ignored: such a write may have happened.
func churn(ctx context.Context, cli *kvclient.Client, w *scanWrites, stable func(int) string, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(3 * time.Millisecond):
		}
		k := stable(rand.IntN(scanKeys))
		v := fmt.Sprintf("v2-%s-%d", k, n)
		if n%3 != 0 {
			w.add(k, v)
			_, _ = cli.Put(ctx, k, []byte(v))
			continue
		}
		k = fmt.Sprintf("churn%05d", n%500)
		w.add(k, k)
		if _, err := cli.Put(ctx, k, []byte(k)); err == nil && n%2 == 0 {
			_ = cli.Delete(ctx, k)
		}
	}
}

// pagedScan walks alice's keys page by page and fails on any key returned
// twice.
func pagedScan(ctx context.Context, cli *kvclient.Client, pages *atomic.Int64, w *scanWrites) (map[string]string, error) {
	got := map[string]string{}
	cursor := ""
	for {
		kvs, next, err := cli.Scan(ctx, "", cursor, scanPage)
		if err != nil {
			return got, fmt.Errorf("page %d at cursor %q: %w", pages.Load(), cursor, err)
		}
		for _, kv := range kvs {
			if _, dup := got[kv.Key]; dup {
				return got, fmt.Errorf("key %s returned twice", kv.Key)
			}
			got[kv.Key] = string(kv.Value)
		}
		pages.Add(1)
		if cursor = next; cursor == "" {
			return got, nil
		}
		time.Sleep(scanPace)
	}
}

// waitPages waits until the scan has read n pages; the scan must not end
// before.
func waitPages(t *testing.T, pages *atomic.Int64, n int64, done <-chan scanResult) {
	t.Helper()
	for pages.Load() < n {
		select {
		case r := <-done:
			t.Fatalf("scan ended after %d pages (%v), before page %d", pages.Load(), r.err, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
