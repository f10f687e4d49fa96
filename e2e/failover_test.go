//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Shape and hang guards of the failover tests. The timings themselves are
// measured by TestBenchFailover (make bench-failover); these bounds only
// catch a cluster that does not recover at all.
const (
	failoverServers    = 5
	failoverReplicas   = 3
	failoverPartitions = 128
	resumeWithin       = 30 * time.Second // writes to the dead server's partitions succeed again
	removedWithin      = 30 * time.Second // the dead server leaves every chain
	convergeWithin     = 60 * time.Second // every chain has R members again
	writeAfterKill     = 5 * time.Second  // load kept on after the kill
)

// failoverLoad is the write load of the kill tests: 8 closed-loop writers,
// one write in 5 overwriting one of the writer's 4 hot keys.
func failoverLoad(prefix string) loadConfig {
	return loadConfig{prefix: prefix, workers: 8, hot: 4, hotEvery: 5, valueSize: 100, opTimeout: 5 * time.Second}
}

// startFailoverLoad starts the write load, with the ring history recorded
// to explain any lost write.
func startFailoverLoad(t *testing.T, c *framework.Cluster, cli *kvclient.Client, prefix string) *writeLoad {
	t.Helper()
	h := recordHistory(t, c)
	l := startWriteLoad(t, cli, failoverLoad(prefix))
	l.hist = h
	return l
}

// kill kills -9 server id, notes it in the history and returns its command
// line and when it was killed.
func kill(t *testing.T, c *framework.Cluster, l *writeLoad, id string) ([]string, time.Time) {
	t.Helper()
	at := time.Now()
	l.hist.note("kill -9 %s (%d writes acknowledged)", id, l.acks.Load())
	return c.KillServer(t, id), at
}

func newFailoverCluster(t *testing.T) (*framework.Cluster, *kvclient.Client) {
	t.Helper()
	c := framework.NewCluster(t, framework.WithServers(failoverServers), framework.WithReplicas(failoverReplicas),
		framework.WithPartitions(failoverPartitions))
	cli := c.Client(t)
	r := cli.Ring()
	require.Equal(t, failoverReplicas, r.Replicas)
	assertChainsFull(t, r)
	return c, cli
}

// hotChain returns the partition of the load's first hot key and its chain.
func hotChain(t *testing.T, cli *kvclient.Client, l *writeLoad) (int, ringmeta.Chain) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	key := l.hotKey(0, 0)
	p := r.PartitionOf(nil, []byte(key))
	ch := r.Chain(p)
	require.Len(t, ch.Members, failoverReplicas, "chain of hot key %s (partition %d)", key, p)
	t.Logf("hot key %s: partition %d, chain %v v%d, ring epoch %d", key, p, ch.Members, ch.Version, r.Epoch)
	return p, ch
}

// awaitWritesResume probes writes to key (in a partition of the dead server)
// every 5ms with 250ms deadlines and logs how long after the kill the first
// one succeeded.
func awaitWritesResume(t *testing.T, cli *kvclient.Client, key string, killedAt time.Time) time.Duration {
	t.Helper()
	gap, ok := firstSuccess(killedAt, 5*time.Millisecond, 250*time.Millisecond, resumeWithin, func(ctx context.Context) error {
		_, err := cli.Put(ctx, key, []byte("probe"))
		return err
	})
	require.True(t, ok, "a write to %s (%s) succeeded within %v of the kill", key, where(cli, key), resumeWithin)
	t.Logf("writes to partition %d resumed %v after the kill (%s)", cli.Ring().PartitionOf(nil, []byte(key)),
		gap.Round(time.Millisecond), where(cli, key))
	return gap
}

// awaitRemoved waits until id is in no chain and logs when.
func awaitRemoved(t *testing.T, cli *kvclient.Client, id string, killedAt time.Time) *ringmeta.Ring {
	t.Helper()
	r := waitRing(t, cli, removedWithin, func(r *ringmeta.Ring) bool { return !inChains(r, id) },
		"%s removed from every chain after kill -9", id)
	t.Logf("%s out of every chain %v after the kill, ring epoch %d", id, time.Since(killedAt).Round(time.Millisecond), r.Epoch)
	return r
}

// keepWriting lets the load run until at least d after since, and checks
// that it made progress after the kill.
func keepWriting(t *testing.T, l *writeLoad, since time.Time, d time.Duration, acksAtKill int64) {
	t.Helper()
	time.Sleep(time.Until(since.Add(d)))
	assert.Greater(t, l.acks.Load(), acksAtKill+100, "writes acknowledged after the kill")
}

// finish stops the load, waits for convergence and checks every write and
// every replica.
func finish(ctx context.Context, t *testing.T, c *framework.Cluster, cli *kvclient.Client, l *writeLoad) framework.StatusJSON {
	t.Helper()
	l.stop(t)
	st, _ := waitConverged(t, c, convergeWithin)
	r, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	assertChainsFull(t, r)
	l.verify(ctx, t, cli)
	assertCheckClean(t, c, l.hist)
	return st
}

// TestKillUnderLoad kills -9 the head of a hot key's partition while eight
// writers run, and checks that writes to its partitions resume, that no
// acknowledged write is lost and that every chain gets back to R members
// with identical replicas.
func TestKillUnderLoad(t *testing.T) {
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startFailoverLoad(t, c, cli, "kul")
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	victim := ch.Head()
	probe := keyInPartition(cli.Ring(), p, "kul-probe-")
	acks := l.acks.Load()
	t.Logf("kill -9 %s (head of %d, member of %d partitions) with %d writes acknowledged", victim,
		len(partitionsOf(cli.Ring(), victim, "head")), len(partitionsOf(cli.Ring(), victim, "member")), acks)
	_, killedAt := kill(t, c, l, victim)
	awaitWritesResume(t, cli, probe, killedAt)
	awaitRemoved(t, cli, victim, killedAt)
	keepWriting(t, l, killedAt, writeAfterKill, acks)

	st := finish(ctx, t, c, cli, l)
	s, ok := st.Server(victim)
	if ok {
		assert.NotEqual(t, "active", s.State, "%s state after kill -9", victim)
	}
}

// TestKillTwoOfAChain kills -9 two of the three members of a chain, the
// second once the first is out of every chain, under the same load.
func TestKillTwoOfAChain(t *testing.T) {
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startFailoverLoad(t, c, cli, "k2")
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	first, second := ch.Members[0], ch.Members[1]
	probe := keyInPartition(cli.Ring(), p, "k2-probe-")

	acks := l.acks.Load()
	t.Logf("kill -9 %s (head of partition %d) with %d writes acknowledged", first, p, acks)
	_, killedAt := kill(t, c, l, first)
	awaitWritesResume(t, cli, probe, killedAt)
	r := awaitRemoved(t, cli, first, killedAt)
	t.Logf("partition %d after the first kill: chain %v v%d learner %q", p, r.Chain(p).Members, r.Chain(p).Version, r.Chain(p).Learner)
	require.Contains(t, r.Chain(p).Members, second, "%s still in partition %d's chain", second, p)
	// Let the load resume and re-replication start before the second kill.
	l.waitAcks(t, l.acks.Load()+200, 30*time.Second)
	if st, err := c.StatusE(t); err == nil {
		t.Logf("before the second kill: %s", st.Summary())
	}

	acks2 := l.acks.Load()
	t.Logf("kill -9 %s with %d writes acknowledged (%d since the first kill)", second, acks2, acks2-acks)
	_, killed2At := kill(t, c, l, second)
	awaitWritesResume(t, cli, probe, killed2At)
	r = awaitRemoved(t, cli, second, killed2At)
	t.Logf("partition %d after the second kill: chain %v v%d learner %q", p, r.Chain(p).Members, r.Chain(p).Version, r.Chain(p).Learner)
	keepWriting(t, l, killed2At, writeAfterKill, acks2)

	finish(ctx, t, c, cli, l)
}

// TestRestartRejoins kills -9 a server under load and restarts it with its
// exact command line (same id, ports and data dir): it comes back as a new
// incarnation, rejoins, and the cluster converges with every acknowledged
// write intact. Two timings: at once, before the ECS noticed the crash (a
// supervisor's immediate restart), and once the ECS failed it over but
// before its old membership lease expired (the new process answers health
// probes at the old address while etcd still holds the old incarnation).
func TestRestartRejoins(t *testing.T) {
	t.Run("before-detection", func(t *testing.T) { testRestartRejoins(t, false, 1) })
	t.Run("after-failover", func(t *testing.T) { testRestartRejoins(t, true, 3) })
}

// testRestartRejoins runs cycles kill/restart rounds, each on another
// server (the first: the head of a hot key's partition), then checks.
func testRestartRejoins(t *testing.T, afterFailover bool, cycles int) {
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startFailoverLoad(t, c, cli, "rr")
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	victim := ch.Head()
	procs := map[string]*framework.Process{} // the latest process of each restarted server
	for cycle := range cycles {
		if cycle > 0 {
			// The next victim: a member of the hot chain not killed yet.
			r, err := cli.RefreshRing(ctx)
			require.NoError(t, err)
			ch = r.Chain(p)
			victim = ch.Members[0]
			for _, id := range ch.Members {
				if procs[id] == nil {
					victim = id
					break
				}
			}
		}
		probe := keyInPartition(cli.Ring(), p, fmt.Sprintf("rr-probe%d-", cycle))
		st0 := c.Status(t)
		old, ok := st0.Server(victim)
		require.True(t, ok)

		acks := l.acks.Load()
		argv, killedAt := kill(t, c, l, victim)
		t.Logf("cycle %d: killed %s (pid %d, incarnation %d) with %d writes acknowledged; its command line: %q",
			cycle+1, victim, old.PID, old.Incarnation, acks, argv)
		if afterFailover {
			awaitRemoved(t, cli, victim, killedAt)
		}
		t.Logf("restarting %s %v after the kill", victim, time.Since(killedAt).Round(time.Millisecond))
		l.hist.note("restart %s", victim)
		proc := c.RestartServer(t, victim, argv)
		procs[victim] = proc

		awaitWritesResume(t, cli, probe, killedAt)
		var last framework.StatusJSON
		active := testutil.WaitUntil(removedWithin, 100*time.Millisecond, func() bool {
			st, err := c.StatusE(t)
			if err != nil {
				return false
			}
			last = st
			s, ok := st.Server(victim)
			return ok && s.State == "active" && s.PID == proc.PID() && s.Incarnation != old.Incarnation
		})
		require.True(t, active, "%s active again as pid %d, a new incarnation; last status: %s", victim, proc.PID(), last.Summary())
		t.Logf("%s active again %v after the kill: %s", victim, time.Since(killedAt).Round(time.Millisecond), last.Summary())
		if cycle < cycles-1 {
			st, took := waitConverged(t, c, convergeWithin)
			t.Logf("cycle %d: converged %v after %s was active again; %s holds %d replicas", cycle+1,
				took.Round(time.Millisecond), victim, victim, func() int { s, _ := st.Server(victim); return s.Replicas() }())
		} else {
			keepWriting(t, l, killedAt, writeAfterKill, acks)
		}
	}

	st := finish(ctx, t, c, cli, l)
	s := assertActive(t, st, victim)
	assert.Positive(t, s.Replicas(), "%s holds replicas again after rejoining", victim)
	awaitRolesBalanced(t, c, convergeWithin)
	for _, proc := range procs {
		assert.True(t, proc.Running(), "restarted %s still runs", proc.Name())
	}
}

// TestDeadIncarnationNotRevived kills -9 a server and, once the ECS has
// failed it over, lets a process that answers gRPC health probes (SERVING)
// but never registers listen on its address while its old membership lease
// runs out: what a restarted kvserver looks like between its Listen and its
// etcd registration. The ECS must not take the dead incarnation back:
// health answers from whatever listens on the address are not evidence that
// the incarnation in etcd lives (the ECS probes the health service of the
// registered incarnation, which the impostor does not know).
func TestDeadIncarnationNotRevived(t *testing.T) {
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := startFailoverLoad(t, c, cli, "dinr")
	l.waitAcks(t, 300, 30*time.Second)
	_, ch := hotChain(t, cli, l)
	victim := ch.Head()
	argv, killedAt := kill(t, c, l, victim)
	awaitRemoved(t, cli, victim, killedAt)

	lis, err := net.Listen("tcp", c.ServerAddr(victim))
	require.NoError(t, err)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	// The old lease (3s TTL) runs out while the impostor answers.
	revived := ""
	for time.Since(killedAt) < 5*time.Second {
		st, err := c.StatusE(t)
		if err == nil {
			if s, ok := st.Server(victim); ok && (s.State == "active" || s.Replicas()+s.Learning > 0) && revived == "" {
				revived = fmt.Sprintf("%v after the kill: %s state %s, %d replicas, %d learning",
					time.Since(killedAt).Round(time.Millisecond), victim, s.State, s.Replicas(), s.Learning)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	gs.Stop()
	assert.Empty(t, revived, "the dead incarnation of %s was taken back on the strength of health answers from another process", victim)

	l.hist.note("restart %s", victim)
	proc := c.RestartServer(t, victim, argv)
	testutil.Eventually(t, removedWithin, 100*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		s, ok := st.Server(victim)
		return err == nil && ok && s.State == "active" && s.PID == proc.PID()
	}, "the restarted %s active", victim)
	st := finish(ctx, t, c, cli, l)
	if s := assertActive(t, st, victim); s.Replicas() == 0 {
		t.Errorf("the restarted %s holds no replica after convergence", victim)
	}
}

// awaitRolesBalanced waits until every active server heads, and tails, no
// more chains than 1.10 x the mean (or the mean rounded up, counts being
// whole): a server that rejoins takes its replicas back as the tail of
// each chain, and the ECS then reorders chains to spread the roles.
func awaitRolesBalanced(t *testing.T, c *framework.Cluster, within time.Duration) {
	t.Helper()
	var why string
	ok := testutil.WaitUntil(within, 250*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			why = err.Error()
			return false
		}
		var active []framework.ServerStatus
		for _, s := range st.Servers {
			if s.State == "active" {
				active = append(active, s)
			}
		}
		if len(active) == 0 {
			why = "no active server"
			return false
		}
		mean := float64(failoverPartitions) / float64(len(active))
		bound := max(1.10*mean, math.Ceil(mean))
		for _, s := range active {
			for _, role := range []string{"head", "tail"} {
				if n := s.Roles[role]; float64(n) > bound {
					why = fmt.Sprintf("%s is %s of %d chains, mean %.1f: %s", s.ID, role, n, mean, st.Summary())
					return false
				}
			}
		}
		t.Logf("roles balanced: %s", st.Summary())
		return true
	})
	require.True(t, ok, "roles not balanced within %v: %s", within, why)
}
