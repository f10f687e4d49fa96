package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/kvclient"
)

// ReadLease is the kvservers' read lease (kvserver/lease.go).
const ReadLease = 400 * time.Millisecond

// MembershipLease is the TTL of a kvserver's etcd lease (config's LeaseTTL
// default): a server cut from etcd for longer leaves the membership.
const MembershipLease = 3 * time.Second

// Nemesis injects one kind of fault into a ChaosCluster. Inject starts the
// fault and returns a description and the function that ends it (restart,
// resume, heal). Check, when set, runs after each fault once the cluster is
// whole again and returns what it found wrong, one line per failed check.
type Nemesis struct {
	Name   string
	Hold   time.Duration // how long the fault lasts
	Inject func(t testing.TB, c *ChaosCluster, env NemesisEnv) (what string, heal func())
	Check  func(t testing.TB, c *ChaosCluster, env NemesisEnv) []string
}

// NemesisEnv is what a nemesis may use to pick its victim.
type NemesisEnv struct {
	Rng    *rand.Rand
	Client *kvclient.Client // to find hot chains
	Keys   []string         // the workload's keys
}

func (e NemesisEnv) server(c *ChaosCluster) string {
	ids := c.ServerIDs()
	return ids[e.Rng.IntN(len(ids))]
}

// hotChain returns the partition of a random workload key and its chain
// (no members when etcd does not answer).
func (e NemesisEnv) hotChain() (int, ringmeta.Chain) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := e.Keys[e.Rng.IntN(len(e.Keys))]
	r, err := e.Client.RefreshRing(ctx)
	if err != nil {
		return -1, ringmeta.Chain{}
	}
	p := r.PartitionOf(nil, []byte(key))
	return p, r.Chain(p)
}

// hotHead returns the head of the chain of a random workload key.
func (e NemesisEnv) hotHead(c *ChaosCluster) string {
	if _, ch := e.hotChain(); ch.Head() != "" {
		return ch.Head()
	}
	return e.server(c)
}

// minority returns a random server, or the head and the middle of a
// workload key's chain (a minority of the five), and describes the choice.
func (e NemesisEnv) minority(c *ChaosCluster) ([]string, string) {
	if e.Rng.IntN(2) == 0 {
		id := e.server(c)
		return []string{id}, id
	}
	p, ch := e.hotChain()
	if len(ch.Members) < 3 {
		id := e.server(c)
		return []string{id}, id
	}
	ids := ch.Members[:2]
	return ids, fmt.Sprintf("head %s and middle %s of partition %d (chain %v v%d)", ids[0], ids[1], p, ch.Members, ch.Version)
}

func killAndRestart(t testing.TB, c *ChaosCluster, id string) func() {
	c.Kill(t, id)
	return func() { c.Restart(t, id) }
}

func partitionMode(rng *rand.Rand) Fault {
	if rng.IntN(2) == 0 {
		return Fault{Kind: Drop}
	}
	return Fault{Kind: Blackhole}
}

// Nemeses lists every nemesis, by name.
var Nemeses = []Nemesis{
	{Name: "kill-server", Hold: 2 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			id := e.server(c)
			return "kill -9 " + id, killAndRestart(t, c, id)
		}},
	{Name: "kill-head", Hold: 2 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			id := e.hotHead(c)
			return "kill -9 hot head " + id, killAndRestart(t, c, id)
		}},
	{Name: "pause-server", Hold: 2 * ReadLease,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			id := e.server(c)
			p := c.Proc(id)
			p.Pause(t)
			return "SIGSTOP " + id, func() { p.Resume(t) }
		}},
	{Name: "partition-server", Hold: 5 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			id, f := e.server(c), partitionMode(e.Rng)
			c.Net().Set(id, Any, f) // to peers, the ECS and etcd
			c.Net().Set(Any, id, f) // from everyone
			return fmt.Sprintf("%s %s from every node", f.Kind, id), func() {
				c.Net().Set(id, Any, Fault{})
				c.Net().Set(Any, id, Fault{})
			}
		}},
	{Name: "partition-ecs", Hold: 5 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			f := partitionMode(e.Rng)
			for _, ecs := range c.ECSNames() {
				for _, id := range c.ServerIDs() {
					c.Net().Set(ecs, id, f)
				}
			}
			return fmt.Sprintf("%s the ECSes from the servers", f.Kind), c.Net().Heal
		}},
	{Name: "kill-ecs-leader", Hold: 3 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			name := c.LeaderECS(t)
			if name == "" {
				return "no ECS leader to kill", func() {}
			}
			return "kill -9 leader " + name, killAndRestart(t, c, name)
		}},
	{Name: "restart-etcd", Hold: 2 * time.Second,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			c.Etcd().Kill(t)
			return "kill -9 etcd", func() { c.Etcd().Start(t) }
		}},
	{Name: "kill-all", Hold: 2 * time.Second, Check: checkAfterPowerCut,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			// A power cut of every machine but etcd's, in the middle of a
			// burst of writes to keys outside the workload's (so every
			// partition has writes in flight): the controllers come back as
			// `ecs start -n 0` on the same etcd, the servers on their data
			// dirs.
			nodes := append(c.ECSNames(), c.ServerIDs()...)
			stop := writeBurst(e.Client, fmt.Sprintf("%s-burst-%d-", e.Keys[0], e.Rng.Uint32()), burstWriters)
			time.Sleep(burstBeforeCut) // the burst is under way
			c.KillAll(t, nodes...)
			stop()
			return "kill -9 every server and ECS at once", func() {
				for _, n := range nodes {
					c.Restart(t, n)
				}
			}
		}},
	{Name: "isolate-control-plane", Hold: 3 * MembershipLease,
		Inject: func(t testing.TB, c *ChaosCluster, e NemesisEnv) (string, func()) {
			ids, who := e.minority(c)
			f := partitionMode(e.Rng)
			for _, id := range ids {
				c.Net().Set(id, EtcdNode, f)
				for _, ecs := range c.ECSNames() {
					c.Net().Set(id, ecs, f)
					c.Net().Set(ecs, id, f)
				}
			}
			return fmt.Sprintf("%s %s from etcd and the ECSes (peers and clients still reach them)", f.Kind, who), c.Net().Heal
		}},
}

// The write burst of kill-all.
const (
	burstWriters   = 16
	burstBeforeCut = time.Second
)

// writeBurst starts writers goroutines putting to keys prefix<n> one after
// the other, until the returned function stops and joins them. Outcomes
// are not recorded: the burst only puts writes in flight.
func writeBurst(cli *kvclient.Client, prefix string, writers int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
				_, _ = cli.Put(octx, fmt.Sprintf("%s%d", prefix, n*writers+w), []byte("burst"))
				ocancel()
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// checkAfterPowerCut is the acceptance of a whole-cluster restart: every
// fresh key takes a write within FreshWriteWithin and `ecs check` reports no
// difference within CheckCleanWithin.
func checkAfterPowerCut(t testing.TB, c *ChaosCluster, e NemesisEnv) []string {
	t.Helper()
	var problems []string
	prefix := fmt.Sprintf("%s-fresh-%d-", e.Keys[0], e.Rng.Uint32())
	acked, slowest, problem := FreshWrites(e.Client, prefix, FreshKeys, FreshWriteWithin)
	t.Logf("chaos: fresh writes: %d of %d acknowledged, slowest in %v", acked, FreshKeys, slowest.Round(time.Millisecond))
	if problem != "" {
		problems = append(problems, "fresh writes: "+problem)
	}
	_, took, problem := CheckClean(t, c.Check, CheckCleanWithin)
	if problem != "" {
		problems = append(problems, "ecs check: "+problem)
	} else {
		t.Logf("chaos: ecs check clean after %v", took.Round(time.Millisecond))
	}
	return problems
}

// NemesisByName returns the nemesis called name.
func NemesisByName(name string) (Nemesis, bool) {
	for _, n := range Nemeses {
		if n.Name == name {
			return n, true
		}
	}
	return Nemesis{}, false
}

// WaitHealthy waits up to timeout until every server is active and in the
// chains, no partition is under-replicated and an ECS leads; it returns
// what is still missing when it gives up.
func (c *ChaosCluster) WaitHealthy(t testing.TB, timeout time.Duration) error {
	t.Helper()
	why := "no status"
	ok := testutil.WaitUntil(timeout, 500*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			why = err.Error()
			return false
		}
		if conv, w := st.Converged(); !conv {
			why = w
			return false
		}
		for _, s := range st.Servers {
			if s.State != "active" {
				why = s.ID + " is " + s.State
				return false
			}
		}
		if len(st.Servers) != c.cfg.Servers {
			why = fmt.Sprintf("%d servers in the ring, want %d", len(st.Servers), c.cfg.Servers)
			return false
		}
		if c.LeaderECS(t) == "" {
			why = "no ECS leads"
			return false
		}
		return true
	})
	if !ok {
		return fmt.Errorf("not healthy within %v: %s", timeout, why)
	}
	return nil
}
