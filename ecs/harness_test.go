package ecs

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// The controller tests run against a real (embedded) etcd and fake
// kvservers: member records written straight into etcd, a fake health
// checker, and a loop that plays the kvservers' part of the protocol
// (report the applied epoch, write ready keys for learners and synced keys
// for the members just promoted).

func testConfig(partitions, replicas, maxMoves int) config.ECS {
	cfg := config.DefaultECS()
	cfg.Cluster = "t"
	cfg.Partitions, cfg.Replicas, cfg.MaxMoves = partitions, replicas, maxMoves
	cfg.LeaseTTL = time.Second
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.ProbeFailures = 10*time.Millisecond, 10*time.Millisecond, 2
	return cfg
}

// fakeHealth answers probes by address; down addresses fail.
type fakeHealth struct {
	mu   sync.Mutex // guards down
	down map[string]bool
}

type fakeChecker struct {
	f    *fakeHealth
	addr string
}

func (f *fakeHealth) dial(addr string, _ uint64) (healthChecker, error) {
	return fakeChecker{f, addr}, nil
}

func (f *fakeHealth) set(addr string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[addr] = down
}

func (c fakeChecker) check(context.Context) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.down[c.addr] {
		return fmt.Errorf("fake: %w", errNotServing) // as a server that answers NOT_SERVING
	}
	return nil
}

func (fakeChecker) close() {}

// testCluster is one controller over etcd with fake servers.
type testCluster struct {
	t      *testing.T
	cli    *clientv3.Client
	cfg    config.ECS
	health *fakeHealth
	ctl    *controller
	procs  *fakeProcs

	putMu     sync.Mutex // serialises member writes with kill
	mu        sync.Mutex // guards the fields below
	rings     []*ringmeta.Ring
	at        []time.Time       // when each ring arrived (debugging)
	alive     map[string]uint64 // fake servers that play along, by id: incarnation
	silent    map[string]bool   // fake servers that report no epoch
	lagging   map[string]bool   // fake servers that, once promoted, do not report synced
	autoReady bool
	inc       uint64
}

func newTestCluster(t *testing.T, cfg config.ECS) *testCluster {
	tc := &testCluster{t: t, cfg: cfg, health: &fakeHealth{down: map[string]bool{}},
		alive: map[string]uint64{}, silent: map[string]bool{}, lagging: map[string]bool{}, autoReady: true}
	tc.cli, _ = testutil.StartEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tc.playServers(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return tc
}

func addr(id string) string { return "fake-" + id + ":1" }

// register writes a member record for id with a new incarnation.
func (tc *testCluster) register(ids ...string) {
	for _, id := range ids {
		tc.mu.Lock()
		tc.inc++
		tc.alive[id] = tc.inc
		tc.mu.Unlock()
		tc.putMember(context.Background(), id, tc.epoch())
	}
}

func (tc *testCluster) putMember(ctx context.Context, id string, epoch uint64) {
	tc.putMu.Lock() // a killed server must not be written back by a report in flight
	defer tc.putMu.Unlock()
	tc.mu.Lock()
	inc, ok := tc.alive[id]
	tc.mu.Unlock()
	if !ok {
		return
	}
	m := etcdkeys.Member{ID: id, Addr: addr(id), Incarnation: inc, Epoch: epoch, PID: 1000 + int(inc)}
	_, err := tc.cli.Put(ctx, etcdkeys.Server(tc.cfg.Cluster, id), string(m.Marshal()))
	if err != nil && ctx.Err() == nil {
		tc.t.Errorf("register %s: %v", id, err)
	}
}

// kill deletes id's member record, as a lease expiry would.
func (tc *testCluster) kill(id string) {
	tc.putMu.Lock()
	defer tc.putMu.Unlock()
	tc.mu.Lock()
	delete(tc.alive, id)
	tc.mu.Unlock()
	if _, err := tc.cli.Delete(context.Background(), etcdkeys.Server(tc.cfg.Cluster, id)); err != nil {
		tc.t.Errorf("kill %s: %v", id, err) // may run on the controller goroutine: no FailNow
	}
}

func (tc *testCluster) seed(r *ringmeta.Ring) {
	b, err := r.Marshal()
	require.NoError(tc.t, err)
	_, err = tc.cli.Put(context.Background(), etcdkeys.Ring(tc.cfg.Cluster), string(b))
	require.NoError(tc.t, err)
}

// start runs a controller until the test ends or stop is called; a later
// start runs another one, as a new leader after a takeover.
func (tc *testCluster) start() (stop func()) {
	tc.ctl = &controller{
		cfg: tc.cfg, lg: zaptest.NewLogger(tc.t, zaptest.Level(zap.WarnLevel)), cli: tc.cli,
		rings: newRingStore(tc.cli, tc.cfg.Cluster), events: &eventLog{}, gauges: newECSMetrics(),
		dial: tc.health.dial, adminDial: noAdmin,
	}
	if tc.procs != nil {
		tc.ctl.procs = tc.procs
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tc.ctl.run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(tc.t, <-done)
		})
	}
	tc.t.Cleanup(stop)
	return stop
}

// playServers follows the ring from its first revision, records every
// epoch, and acts for the fake servers: each reports the epoch it applied,
// learners that play along report ready at once, and members just promoted
// report synced at once unless lagging.
func (tc *testCluster) playServers(ctx context.Context) {
	key := etcdkeys.Ring(tc.cfg.Cluster)
	var prev *ringmeta.Ring
	for wr := range tc.cli.Watch(ctx, key, clientv3.WithRev(1)) {
		for _, ev := range wr.Events {
			if ev.Type != clientv3.EventTypePut {
				continue
			}
			r, err := ringmeta.Unmarshal(ev.Kv.Value)
			if err != nil {
				tc.t.Errorf("published ring does not decode: %v", err)
				return
			}
			tc.mu.Lock()
			tc.rings = append(tc.rings, r)
			tc.at = append(tc.at, time.Now())
			var ids []string
			for id := range tc.alive {
				ids = append(ids, id)
			}
			auto := tc.autoReady
			tc.mu.Unlock()
			for _, id := range ids {
				tc.mu.Lock()
				quiet := tc.silent[id]
				tc.mu.Unlock()
				if !quiet {
					tc.putMember(ctx, id, r.Epoch)
				}
			}
			for p, ch := range r.Chains {
				tc.mu.Lock()
				_, live := tc.alive[ch.Learner]
				tc.mu.Unlock()
				if auto && live {
					_, _ = tc.cli.Put(ctx, etcdkeys.Ready(tc.cfg.Cluster, ch.Learner, p), strconv.FormatUint(ch.Version, 10))
				}
			}
			tc.reportPromoted(ctx, prev, r)
			prev = r
		}
	}
}

// reportPromoted writes synced/<id>/<p> for every live member of r that was
// the learner of its chain in prev and does not lag.
func (tc *testCluster) reportPromoted(ctx context.Context, prev, r *ringmeta.Ring) {
	if prev == nil || len(prev.Chains) != len(r.Chains) {
		return
	}
	for p, ch := range r.Chains {
		id := prev.Chains[p].Learner
		tc.mu.Lock()
		_, live := tc.alive[id]
		report := live && !tc.lagging[id]
		tc.mu.Unlock()
		if id != "" && ch.Index(id) > 0 && report {
			_, _ = tc.cli.Put(ctx, etcdkeys.Synced(tc.cfg.Cluster, id, p), strconv.FormatUint(ch.Version, 10))
		}
	}
}

// lag stops id, once promoted, from reporting synced; lag(id, false) lets it
// report again, at once, for every chain it is a member of but not the head.
func (tc *testCluster) lag(id string, on bool) {
	tc.mu.Lock()
	tc.lagging[id] = on
	tc.mu.Unlock()
	if r := tc.latest(); !on && r != nil {
		for p, ch := range r.Chains {
			if ch.Index(id) > 0 {
				_, err := tc.cli.Put(context.Background(), etcdkeys.Synced(tc.cfg.Cluster, id, p), strconv.FormatUint(ch.Version, 10))
				require.NoError(tc.t, err)
			}
		}
	}
}

// setAutoReady sets whether learners that play along report ready at once
// (the default). playServers reads it as rings arrive: tests must not write
// the field directly.
func (tc *testCluster) setAutoReady(on bool) {
	tc.mu.Lock()
	tc.autoReady = on
	tc.mu.Unlock()
}

// silence stops (or, with false, resumes) id's epoch reports; resuming
// reports the latest epoch at once.
func (tc *testCluster) silence(id string, quiet bool) {
	tc.mu.Lock()
	tc.silent[id] = quiet
	tc.mu.Unlock()
	if !quiet {
		tc.putMember(context.Background(), id, tc.epoch())
	}
}

func (tc *testCluster) epoch() uint64 {
	if r := tc.latest(); r != nil {
		return r.Epoch
	}
	return 0
}

func (tc *testCluster) latest() *ringmeta.Ring {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.rings) == 0 {
		return nil
	}
	return tc.rings[len(tc.rings)-1]
}

func (tc *testCluster) history() []*ringmeta.Ring {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]*ringmeta.Ring(nil), tc.rings...)
}

// waitRing waits until the latest ring satisfies cond and returns it.
func (tc *testCluster) waitRing(what string, cond func(*ringmeta.Ring) bool) *ringmeta.Ring {
	tc.t.Helper()
	var got *ringmeta.Ring
	testutil.Eventually(tc.t, 20*time.Second, 10*time.Millisecond, func() bool {
		got = tc.latest()
		return got != nil && cond(got)
	}, "%s", what)
	return got
}

// checkContract asserts that consecutive epochs follow the rules the
// kvservers rely on: epochs count up by one, and each chain changes by at
// most one allowed step per epoch, with its version bumped by one.
func (tc *testCluster) checkContract(maxLearners int) {
	tc.t.Helper()
	h := tc.history()
	for i := 1; i < len(h); i++ {
		prev, cur := h[i-1], h[i]
		require.Equal(tc.t, prev.Epoch+1, cur.Epoch)
		require.LessOrEqual(tc.t, learners(cur.Chains), maxLearners, "epoch %d", cur.Epoch)
		if len(prev.Chains) == 0 {
			continue
		}
		for p := range cur.Chains {
			requireStep(tc.t, prev.Chains[p], cur.Chains[p])
		}
	}
}

// fakeProcs stands in for the launcher: "launching" registers a fake server.
type fakeProcs struct {
	tc       *testCluster
	mu       sync.Mutex // guards launched and stopped
	launched []string
	stopped  []string
}

func (f *fakeProcs) IDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.launched...)
}

func (f *fakeProcs) Add(k int, name string, taken func(string) bool) ([]string, error) {
	var out []string
	for i := 1; len(out) < k; i++ {
		id := fmt.Sprintf("s%d", i)
		if name != "" {
			id = name
		}
		if taken(id) || contains(f.IDs(), id) {
			continue
		}
		f.mu.Lock()
		f.launched = append(f.launched, id)
		f.mu.Unlock()
		out = append(out, id)
		f.tc.register(id)
	}
	return out, nil
}

func (f *fakeProcs) Restart(id string) (int, error) {
	if !contains(f.IDs(), id) {
		return 0, fmt.Errorf("%s was not launched here", id)
	}
	f.tc.register(id)
	return 1, nil
}

func (f *fakeProcs) StopServer(id string) bool {
	f.mu.Lock()
	f.stopped = append(f.stopped, id)
	f.mu.Unlock()
	f.tc.kill(id)
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
