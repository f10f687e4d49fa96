//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	assertCheckClean(t, c)
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
	l := startWriteLoad(t, cli, failoverLoad("kul"))
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	victim := ch.Head()
	probe := keyInPartition(cli.Ring(), p, "kul-probe-")
	acks := l.acks.Load()
	t.Logf("kill -9 %s (head of %d, member of %d partitions) with %d writes acknowledged", victim,
		len(partitionsOf(cli.Ring(), victim, "head")), len(partitionsOf(cli.Ring(), victim, "member")), acks)
	killedAt := time.Now()
	c.KillServer(t, victim)
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
	l := startWriteLoad(t, cli, failoverLoad("k2"))
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	first, second := ch.Members[0], ch.Members[1]
	probe := keyInPartition(cli.Ring(), p, "k2-probe-")

	acks := l.acks.Load()
	t.Logf("kill -9 %s (head of partition %d) with %d writes acknowledged", first, p, acks)
	killedAt := time.Now()
	c.KillServer(t, first)
	awaitWritesResume(t, cli, probe, killedAt)
	r := awaitRemoved(t, cli, first, killedAt)
	t.Logf("partition %d after the first kill: chain %v v%d learner %q", p, r.Chain(p).Members, r.Chain(p).Version, r.Chain(p).Learner)
	require.Contains(t, r.Chain(p).Members, second, "%s still in partition %d's chain", second, p)

	acks2 := l.acks.Load()
	t.Logf("kill -9 %s with %d writes acknowledged (%d since the first kill)", second, acks2, acks2-acks)
	killed2At := time.Now()
	c.KillServer(t, second)
	awaitWritesResume(t, cli, probe, killed2At)
	r = awaitRemoved(t, cli, second, killed2At)
	t.Logf("partition %d after the second kill: chain %v v%d learner %q", p, r.Chain(p).Members, r.Chain(p).Version, r.Chain(p).Learner)
	keepWriting(t, l, killed2At, writeAfterKill, acks2)

	finish(ctx, t, c, cli, l)
}

// TestRestartRejoins kills -9 a server under load and restarts it at once
// with its exact command line (same id, ports and data dir): it comes back
// as a new incarnation, rejoins, and the cluster converges with every
// acknowledged write intact.
func TestRestartRejoins(t *testing.T) {
	c, cli := newFailoverCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startWriteLoad(t, cli, failoverLoad("rr"))
	l.waitAcks(t, 1000, 30*time.Second)

	p, ch := hotChain(t, cli, l)
	victim := ch.Head()
	probe := keyInPartition(cli.Ring(), p, "rr-probe-")
	st0 := c.Status(t)
	old, ok := st0.Server(victim)
	require.True(t, ok)

	acks := l.acks.Load()
	killedAt := time.Now()
	argv := c.KillServer(t, victim)
	t.Logf("killed %s (pid %d, incarnation %d) with %d writes acknowledged; restarting it: %q",
		victim, old.PID, old.Incarnation, acks, argv)
	proc := c.RestartServer(t, victim, argv)

	awaitWritesResume(t, cli, probe, killedAt)
	var last framework.StatusJSON
	active := framework.WaitUntil(removedWithin, 100*time.Millisecond, func() bool {
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
	keepWriting(t, l, killedAt, writeAfterKill, acks)

	st := finish(ctx, t, c, cli, l)
	s := assertActive(t, st, victim)
	assert.Positive(t, s.Replicas(), "%s holds replicas again after rejoining", victim)
	assert.True(t, proc.Running(), "restarted %s still runs", victim)
}
