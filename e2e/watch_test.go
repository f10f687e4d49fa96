//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// watchLog is what the writers did to each key, in order: acked values,
// and values whose write's outcome is unknown.
type watchLog struct {
	mu      sync.Mutex
	acked   map[string][]string
	unknown map[string]bool // values
}

func (l *watchLog) add(key, val string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.acked[key] = append(l.acked[key], val)
	} else {
		l.unknown[val] = true
	}
}

// TestWatchUnderFaults: alice watches a prefix and one key while her keys
// are written in order, bob writes under the same names, a head is killed
// -9 and `ecs add` rebalances. Every acknowledged write must reach each
// watch exactly once and in order per key, writes of unknown outcome at
// most once, versions must grow per key, and none of bob's writes appear.
func TestWatchUnderFaults(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(5), framework.WithReplicas(3),
		framework.WithPartitions(16), framework.WithArgs("--auth"))
	for _, u := range []string{"alice", "bob"} {
		addUser(t, c, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	client := func(u string) *kvclient.Client {
		cli, err := kvclient.New(ctx, c.ClientConfig(), kvclient.WithCredentials(u, u+"-pw"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	alice, bob := client("alice"), client("bob")
	const keys = 12
	key := func(i int) string { return fmt.Sprintf("w/k%02d", i) }

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	type seen struct {
		mu   sync.Mutex
		vals map[string][]string
		vers map[string][]uint64
		err  error
	}
	collect := func(ch <-chan kvclient.WatchResponse) *seen {
		s := &seen{vals: map[string][]string{}, vers: map[string][]uint64{}}
		first := <-ch
		require.True(t, first.Created, "first response: %+v", first)
		go func() {
			for r := range ch {
				s.mu.Lock()
				if r.Err != nil {
					s.err = r.Err
				}
				for _, e := range r.Events {
					s.vals[e.Key] = append(s.vals[e.Key], string(e.Value))
					s.vers[e.Key] = append(s.vers[e.Key], e.Version)
				}
				s.mu.Unlock()
			}
		}()
		return s
	}
	all := collect(alice.Watch(wctx, "w/", kvclient.WatchPrefix()))
	one := collect(alice.Watch(wctx, key(3)))
	// Both watches are established (Created): every write from here on
	// must reach them.

	log := &watchLog{acked: map[string][]string{}, unknown: map[string]bool{}}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i := range keys {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("%s-%d", key(i), n)
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := alice.Put(wctx, key(i), []byte(v))
				cancel()
				log.add(key(i), v, err)
				if n%5 == 0 {
					_, _ = bob.Put(ctx, key(i), []byte("bob-"+v))
				}
			}
		}()
	}
	acked := func() int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, vs := range log.acked {
			n += len(vs)
		}
		return n
	}
	testutil.Eventually(t, time.Minute, 50*time.Millisecond, func() bool { return acked() >= 200 }, "writes too slow")
	victim := alice.Ring().Chains[0].Head()
	t.Logf("kill -9 %s after %d writes", victim, acked())
	c.KillServer(t, victim)
	testutil.Eventually(t, 2*time.Minute, 50*time.Millisecond, func() bool { return acked() >= 600 }, "writes too slow after the kill")
	t.Logf("ecs add -n 1 after %d writes", acked())
	add := framework.StartProcess(t, framework.ProcessSpec{Name: "ecs add", Path: c.Bin(framework.ECSBin),
		Args: []string{"add", "-n", "1", "--etcd-endpoints", c.EtcdEndpoint(), "--timeout", scanAddWithin.String()}})
	code, ok := add.Wait(scanAddWithin + 30*time.Second)
	require.True(t, ok, "ecs add still running")
	require.Equal(t, 0, code, "ecs add; stderr:\n%v", add.Stderr())
	close(stop)
	writers.Wait()
	t.Logf("%d acknowledged writes, %d of unknown outcome", acked(), len(log.unknown))

	// Each watch catches up with the last acknowledged write of each key.
	check := func(name string, s *seen, want func(string) bool) {
		var diag string
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s, last mismatch: %s", name, diag)
			}
		})
		testutil.Eventually(t, time.Minute, 100*time.Millisecond, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			require.NoError(t, s.err, name)
			for k, vs := range log.acked {
				if !want(k) {
					continue
				}
				got := s.vals[k]
				if len(got) == 0 || got[len(got)-1] != vs[len(vs)-1] && !log.unknown[got[len(got)-1]] {
					diag = fmt.Sprintf("key %s acked tail %v seen tail %v vers %v", k, vs[max(0, len(vs)-5):], got[max(0, len(got)-5):], s.vers[k][max(0, len(got)-5):])
					return false
				}
			}
			return true
		}, "%s did not catch up", name)
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, got := range s.vals {
			require.True(t, want(k), "%s: event of %s", name, k)
			vs := s.vers[k]
			for i := 1; i < len(vs); i++ {
				require.Greater(t, vs[i], vs[i-1], "%s: %s: versions must grow", name, k)
			}
			// got must be the acked values in order, with unknown ones
			// interleaved at most once each, and nothing else.
			j, dup := 0, map[string]bool{}
			for _, v := range got {
				require.False(t, strings.HasPrefix(v, "bob"), "%s: bob's write %s reached alice", name, v)
				require.False(t, dup[v], "%s: %s delivered twice", name, v)
				dup[v] = true
				if j < len(log.acked[k]) && v == log.acked[k][j] {
					j++
					continue
				}
				require.True(t, log.unknown[v], "%s: %s=%s out of order or never written (expected %s next)", name, k, v, log.acked[k][min(j, len(log.acked[k])-1)])
			}
			require.Equal(t, len(log.acked[k]), j, "%s: %s: acknowledged writes missing", name, k)
		}
	}
	check("prefix watch", all, func(string) bool { return true })
	check("key watch", one, func(k string) bool { return k == key(3) })
	t.Logf("prefix watch: %d keys; key watch: %d events", len(all.vals), len(one.vals[key(3)]))
	c.Track(t)
}

// TestWatchCLI: `kvclient watch` prints each committed write of a prefix
// as it happens, with its version, and an interrupt ends it cleanly.
func TestWatchCLI(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3))
	w := framework.StartProcess(t, framework.ProcessSpec{Name: "kvclient watch", Path: c.Bin(framework.KVClientBin),
		Args: []string{"--etcd-endpoints", c.EtcdEndpoint(), "watch", "--prefix", "cli/"}})
	testutil.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return slices.ContainsFunc(w.Stderr(), func(l string) bool { return strings.Contains(l, "watching") })
	}, "watch not established; stderr %v", w.Stderr())
	for _, args := range [][]string{{"put", "cli/a", "1"}, {"put", "other", "x"}, {"put", "cli/a", "2"}, {"delete", "cli/a"}} {
		_, stderr, code := c.Kvclient(t, args...)
		require.Equal(t, 0, code, stderr)
	}
	_, err := w.WaitForStdout(30*time.Second, "delete cli/a")
	require.NoError(t, err, "stdout %v stderr %v", w.Stdout(), w.Stderr())
	out := w.Stdout()
	require.Len(t, out, 3, "%v", out)
	require.Regexp(t, `^put cli/a 1 \(version \d+\)$`, out[0])
	require.Regexp(t, `^put cli/a 2 \(version \d+\)$`, out[1])
	require.Regexp(t, `^delete cli/a \(version \d+\)$`, out[2])
	require.NoError(t, w.Signal(syscall.SIGINT))
	code, ok := w.Wait(10 * time.Second)
	require.True(t, ok, "watch did not end on SIGINT")
	require.Equal(t, 0, code, "stderr %v", w.Stderr())
}
