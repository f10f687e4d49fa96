//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/ecskv/ecskv/kvserver/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dataset is a deterministic set of keys and values.
type dataset struct {
	prefix string
	n      int
	size   int // bytes per value when > 0; else short values of varying length
}

func (d dataset) key(i int) string { return fmt.Sprintf("%s%05d", d.prefix, i) }

func (d dataset) value(i int) []byte {
	if d.size > 0 {
		v := fmt.Appendf(nil, "value-%07d-", i)
		return append(v, bytes.Repeat([]byte{byte('a' + i%26)}, max(0, d.size-len(v)))...)
	}
	return []byte(fmt.Sprintf("value-%05d-%s", i, strings.Repeat("v", i%61)))
}

// index maps every key of the set to its index.
func (d dataset) index() map[string]int {
	m := make(map[string]int, d.n)
	for i := range d.n {
		m[d.key(i)] = i
	}
	return m
}

// putAll writes the set with workers concurrent callers, each key new, and
// returns the elapsed time.
func putAll(ctx context.Context, t *testing.T, cli *kvclient.Client, d dataset, workers int) time.Duration {
	t.Helper()
	began := time.Now()
	err := framework.ForEach(ctx, d.n, workers, func(ctx context.Context, i int) error {
		res, err := cli.Put(ctx, d.key(i), d.value(i))
		if err != nil {
			return fmt.Errorf("put %s: %w (%s)", d.key(i), err, where(cli, d.key(i)))
		}
		if res != kvclient.Created {
			return fmt.Errorf("put %s: got %v, want SUCCESS (new key) (%s)", d.key(i), res, where(cli, d.key(i)))
		}
		return nil
	})
	elapsed := time.Since(began)
	require.NoError(t, err)
	return elapsed
}

// readAll reads the set back with workers concurrent callers and returns the
// elapsed time. Every key is read; the test fails listing how many were
// wrong and the first few.
func readAll(ctx context.Context, t *testing.T, cli *kvclient.Client, d dataset, workers int) time.Duration {
	t.Helper()
	var rep placementReport // reused as an error collector
	var mu sync.Mutex       // guards rep
	began := time.Now()
	err := framework.ForEach(ctx, d.n, workers, func(ctx context.Context, i int) error {
		got, err := cli.Get(ctx, d.key(i))
		switch {
		case err != nil:
			err = fmt.Errorf("get %s: %w (%s)", d.key(i), err, where(cli, d.key(i)))
		case !bytes.Equal(got, d.value(i)):
			err = fmt.Errorf("get %s = %q, want %q (%s)", d.key(i), got, d.value(i), where(cli, d.key(i)))
		}
		if err != nil {
			mu.Lock()
			rep.add("%v", err)
			mu.Unlock()
		}
		return ctx.Err()
	})
	elapsed := time.Since(began)
	require.NoError(t, err)
	if rep.count > 0 {
		t.Fatalf("%d of %d keys %s* read back wrong; first ones:\n%s", rep.count, d.n, d.prefix, strings.Join(rep.errs, "\n"))
	}
	return elapsed
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// placementReport collects placement violations, printing the first few.
type placementReport struct {
	errs  []string
	count int
}

func (r *placementReport) add(format string, args ...any) {
	r.count++
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

// checkPlacement opens every server's pebble dir of a stopped cluster and
// checks that each stored key is one of d's keys, in the empty namespace,
// with its value, stored under its partition on a member of that
// partition's chain; and that every key of d is on exactly its chain's
// members. It returns the number of keys each server holds.
func checkPlacement(t *testing.T, c *framework.Cluster, ring *ringmeta.Ring, d dataset) map[string]int {
	t.Helper()
	idx := d.index()
	holders := make(map[string][]string, d.n)
	perServer := map[string]int{}
	var rep placementReport
	for _, srv := range ring.Servers {
		dir := c.ServerDir(srv.ID)
		require.DirExists(t, dir, "pebble dir of %s", srv.ID)
		st, err := storage.Open(dir, storage.Options{})
		require.NoError(t, err, "open %s", dir)
		parts, err := st.Partitions()
		require.NoError(t, err)
		for _, p := range parts {
			chain := ring.Chain(p)
			err := st.Scan(p, func(ns, key []byte, r storage.Record) error {
				k := string(key)
				switch i, ok := idx[k]; {
				case len(ns) != 0:
					rep.add("%s: partition %d holds %q in namespace %q, want the empty namespace", srv.ID, p, k, ns)
				case !ok:
					rep.add("%s: partition %d holds %q, which the test never wrote", srv.ID, p, k)
				case ring.PartitionOf(nil, key) != p:
					rep.add("%s: %q stored under partition %d, belongs to %d", srv.ID, k, p, ring.PartitionOf(nil, key))
				case chain.Index(srv.ID) < 0:
					rep.add("%s: holds %q of partition %d whose chain is %v", srv.ID, k, p, chain.Members)
				case !bytes.Equal(r.Value, d.value(i)):
					rep.add("%s: %q = %q, want %q", srv.ID, k, r.Value, d.value(i))
				case r.ExpiryMs != 0:
					rep.add("%s: %q has expiry %d, was written without TTL", srv.ID, k, r.ExpiryMs)
				}
				holders[k] = append(holders[k], srv.ID)
				perServer[srv.ID]++
				return nil
			})
			require.NoError(t, err, "scan partition %d of %s", p, srv.ID)
		}
		require.NoError(t, st.Close())
	}
	for i := range d.n {
		k := d.key(i)
		chain := ring.Chain(ring.PartitionOf(nil, []byte(k)))
		want := slices.Sorted(slices.Values(chain.Members))
		got := slices.Sorted(slices.Values(holders[k]))
		if !slices.Equal(got, want) {
			rep.add("%q (partition %d) stored on %v, want exactly its chain %v",
				k, ring.PartitionOf(nil, []byte(k)), got, want)
		}
	}
	if rep.count > 0 {
		t.Errorf("%d placement violations, first ones:\n%s", rep.count, strings.Join(rep.errs, "\n"))
	}
	return perServer
}

// isNotFound reports a kvclient one-shot's NOT_FOUND answer.
func isNotFound(stdout, stderr string, code int) bool {
	return code == 1 && strings.Contains(stdout+stderr, "NOT_FOUND")
}

// errIsNotFound is errors.Is(err, kvclient.ErrNotFound).
func errIsNotFound(err error) bool { return errors.Is(err, kvclient.ErrNotFound) }

// assertSameChains checks that a restart with the same servers kept every
// partition's chain (the planner starts from the chains in etcd, DESIGN §2).
func assertSameChains(t *testing.T, before, after *ringmeta.Ring) {
	t.Helper()
	require.Len(t, after.Chains, len(before.Chains))
	moved := 0
	for p := range before.Chains {
		if !slices.Equal(before.Chains[p].Members, after.Chains[p].Members) {
			moved++
		}
	}
	t.Logf("ring epoch %d before the restart, %d after", before.Epoch, after.Epoch)
	assert.Zero(t, moved, "partitions whose chain changed across a restart with the same servers")
}

// where describes the key's partition and chain in the client's ring, for
// error messages.
func where(cli *kvclient.Client, key string) string {
	r := cli.Ring()
	p := r.PartitionOf(nil, []byte(key))
	ch := r.Chain(p)
	return fmt.Sprintf("partition %d, chain %v v%d learner %q at ring epoch %d", p, ch.Members, ch.Version, ch.Learner, r.Epoch)
}
