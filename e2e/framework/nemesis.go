package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/kvclient"
)

// ReadLease is the kvservers' read lease (kvserver/lease.go).
const ReadLease = 400 * time.Millisecond

// Nemesis injects one kind of fault into a ChaosCluster. Inject starts the
// fault and returns a description and the function that ends it (restart,
// resume, heal).
type Nemesis struct {
	Name   string
	Hold   time.Duration // how long the fault lasts
	Inject func(t testing.TB, c *ChaosCluster, env NemesisEnv) (what string, heal func())
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

// hotHead returns the head of the chain of a random workload key.
func (e NemesisEnv) hotHead(c *ChaosCluster) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := e.Client.RefreshRing(ctx)
	if err != nil {
		return e.server(c)
	}
	key := e.Keys[e.Rng.IntN(len(e.Keys))]
	if h := r.Chain(r.PartitionOf(nil, []byte(key))).Head(); h != "" {
		return h
	}
	return e.server(c)
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
