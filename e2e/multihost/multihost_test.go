//go:build multihost

package multihost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
)

const (
	servers        = 5
	partitions     = 256  // P of the layout (compose's default is 1024): each fault moves about P*3/5 replicas twice
	loadKeys       = 2000 // kvbench's user0..user1999, before the faults
	loadValueBytes = 256
	healthyWithin  = 3 * time.Minute  // every server active, every chain of R members, a leader
	seenWithin     = 3 * time.Minute  // the ECS marks a server down and re-forms its chains, or a standby takes over
	checkWithin    = time.Minute      // `ecs check` clean
	porcupineTime  = 90 * time.Second // porcupine's budget
	progressEvery  = 15 * time.Second // how often a wait logs what it waits for
)

// fault is one fault of a whole container and its heal, both docker
// commands (args builds them from the container id and the service).
type fault struct {
	name         string
	service      string // "" is the leading ECS, found when its turn comes
	inject, heal func(l *layout, id, service string) []string
}

func args(verb string) func(*layout, string, string) []string {
	return func(_ *layout, id, _ string) []string { return []string{verb, id} }
}

var faults = []fault{
	{name: "docker kill", service: "s2", inject: args("kill"), heal: args("start")},
	{name: "docker network disconnect", service: "s3",
		inject: func(l *layout, id, _ string) []string { return []string{"network", "disconnect", l.network(), id} },
		heal: func(l *layout, id, svc string) []string {
			return []string{"network", "connect", "--ip", l.serviceAddr(svc), l.network(), id}
		}},
	{name: "docker pause", service: "s4", inject: args("pause"), heal: args("unpause")},
	{name: "docker kill", inject: args("kill"), heal: args("start")}, // the leading ECS
}

// TestMultihost runs the compose layout under container faults; see the
// package doc.
func TestMultihost(t *testing.T) {
	l := newLayout(t)
	c := &cluster{l: l, ecsBin: filepath.Join(framework.BinDir(t), framework.ECSBin)}
	began := time.Now()
	l.up(t)
	c.waitHealthy(t, "after up")
	leader := c.leaderECS(t)
	c.waitStandby(t, otherECS(leader))
	t.Logf("multihost: ready in %v: %d servers active, %s leads, %s stands by", time.Since(began).Round(time.Second),
		servers, leader, otherECS(leader))

	c.kvbench(t, "load", "--workload", "w", "--duration", "1s")
	clients := c.clients(t, 2)
	wl := framework.WorkloadConfig{Clients: len(clients), Workers: 2, Keys: 16, Prefix: "multihost-",
		OpTimeout: 5 * time.Second, Think: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	var hist *framework.History
	done := make(chan struct{})
	go func() { defer close(done); hist = framework.RunWorkload(ctx, clients, wl) }()
	stop := func() { cancel(); <-done }
	defer stop() // also when a fault fails the test
	for _, f := range faults {
		c.runFault(t, f)
	}
	stop()
	c.verify(t, clients[0], hist, wl)
	t.Logf("multihost: passed in %v", time.Since(began).Round(time.Second))
}

// cluster reads the layout's state with the admin commands of this host.
type cluster struct {
	l      *layout
	ecsBin string
}

// healthy reports whether every server is active, every chain converged
// and an ECS leads; otherwise what is missing.
func healthy(st framework.StatusJSON) (bool, string) {
	if ok, why := st.Converged(); !ok {
		return false, why
	}
	for _, s := range st.Servers {
		if s.State != "active" {
			return false, s.ID + " is " + s.State
		}
	}
	switch {
	case len(st.Servers) != servers:
		return false, fmt.Sprintf("%d servers in the ring, want %d", len(st.Servers), servers)
	case st.Leader == "":
		return false, "no ECS leads"
	}
	return true, ""
}

// waitUntil polls `ecs status` until cond holds, failing the test after
// timeout with cond's last explanation.
func (c *cluster) waitUntil(t *testing.T, timeout time.Duration, what string, cond func(framework.StatusJSON) (bool, string)) {
	t.Helper()
	why, began, logged := "no status yet", time.Now(), time.Now()
	ok := testutil.WaitUntil(timeout, 500*time.Millisecond, func() bool {
		if time.Since(logged) >= progressEvery {
			t.Logf("multihost: %s: after %v: %s", what, time.Since(began).Round(time.Second), why)
			logged = time.Now()
		}
		st, err := framework.StatusAt(t, c.ecsBin, c.l.endpoints())
		if err != nil {
			why = err.Error()
			return false
		}
		var ok bool
		ok, why = cond(st)
		return ok
	})
	if !ok {
		t.Fatalf("multihost: %s: not within %v: %s", what, timeout, why)
	}
}

func (c *cluster) waitHealthy(t *testing.T, when string) {
	t.Helper()
	c.waitUntil(t, healthyWithin, "healthy "+when, healthy)
}

// leaderECS returns the service (its hostname) of the leading ECS.
func (c *cluster) leaderECS(t *testing.T) string {
	t.Helper()
	st, err := framework.StatusAt(t, c.ecsBin, c.l.endpoints())
	if err != nil {
		t.Fatalf("multihost: %v", err)
	}
	host, _, _ := strings.Cut(st.Leader, " ")
	if host != "ecs1" && host != "ecs2" {
		t.Fatalf("multihost: leader %q is neither ecs1 nor ecs2", st.Leader)
	}
	return host
}

func otherECS(svc string) string {
	if svc == "ecs1" {
		return "ecs2"
	}
	return "ecs1"
}

// waitStandby waits until svc's ECS serves its metrics as a standby
// (ecskv_ecs_is_leader 0).
func (c *cluster) waitStandby(t *testing.T, svc string) {
	t.Helper()
	url := "http://" + c.l.serviceAddr(svc) + ":9400/metrics"
	hc := &http.Client{Timeout: 2 * time.Second}
	var why string
	if !testutil.WaitUntil(seenWithin, 500*time.Millisecond, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			why = err.Error()
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		why = "no ecskv_ecs_is_leader 0 in its metrics"
		return err == nil && strings.Contains(string(body), "\necskv_ecs_is_leader 0\n")
	}) {
		t.Fatalf("multihost: %s does not stand by within %v: %s", svc, seenWithin, why)
	}
}

// runFault injects f, waits until the cluster has seen it (the server is
// down and its chains re-formed without it, or the standby leads), heals it
// and waits until the cluster is whole again.
func (c *cluster) runFault(t *testing.T, f fault) {
	svc := f.service
	if svc == "" {
		svc = c.leaderECS(t)
	}
	id := c.l.container(t, svc)
	began := time.Now()
	c.l.dockerMust(t, f.inject(c.l, id, svc)...)
	if strings.HasPrefix(svc, "ecs") {
		c.waitUntil(t, seenWithin, svc+"'s standby to take over", func(st framework.StatusJSON) (bool, string) {
			return strings.HasPrefix(st.Leader, otherECS(svc)+" "), "leader " + st.Leader
		})
	} else {
		c.waitUntil(t, seenWithin, svc+" marked down and its chains re-formed", func(st framework.StatusJSON) (bool, string) {
			if s, ok := st.Server(svc); !ok || s.State == "active" {
				return false, svc + " still active"
			}
			return st.Converged()
		})
	}
	seen := time.Since(began)
	c.l.dockerMust(t, f.heal(c.l, id, svc)...)
	healed := time.Now()
	c.waitHealthy(t, "after "+f.name+" of "+svc)
	if strings.HasPrefix(svc, "ecs") {
		c.waitStandby(t, svc)
	}
	what := svc
	if f.service == "" {
		what += ", the leading ECS"
	}
	t.Logf("multihost: %s of %s: handled in %v, whole again %v after the heal", f.name, what,
		seen.Round(100*time.Millisecond), time.Since(healed).Round(100*time.Millisecond))
}

// clients opens n library clients on this host, the ring from etcd.
func (c *cluster) clients(t *testing.T, n int) []*kvclient.Client {
	t.Helper()
	cfg := config.DefaultClient()
	cfg.EtcdEndpoints = strings.Split(c.l.endpoints(), ",")
	var out []*kvclient.Client
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cli, err := kvclient.New(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("multihost: client: %v", err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		out = append(out, cli)
	}
	return out
}

// kvbenchResult is the part of `kvbench --json` the test reads.
type kvbenchResult struct {
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"`
}

// kvbench runs kvbench over the loaded keys in a client container on the
// layout's network; a failed load phase fails the test.
func (c *cluster) kvbench(t *testing.T, what string, args ...string) kvbenchResult {
	t.Helper()
	full := append([]string{"run", "--rm", "client", "kvbench", "--target", "ecskv://" + c.l.endpoints(),
		"--keys", fmt.Sprint(loadKeys), "--value-size", fmt.Sprint(loadValueBytes), "--clients", "8",
		"--warmup", "0s", "--quiet", "--json"}, args...)
	began := time.Now()
	out := c.l.composeMust(t, 3*time.Minute, full...)
	var res kvbenchResult
	if err := json.Unmarshal([]byte(out[max(strings.Index(out, "{"), 0):]), &res); err != nil {
		t.Fatalf("multihost: kvbench %s: %v; output:\n%s", what, err, out)
	}
	t.Logf("multihost: kvbench %s in a client container: %d keys, %d ops, %d errors (%v)", what, loadKeys,
		res.Ops, res.Errors, time.Since(began).Round(100*time.Millisecond))
	return res
}
