//go:build e2e

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestRestartCommand: `ecs restart ID` brings back a killed local server
// on its data dir and flags; it refuses a running or unknown server.
func TestRestartCommand(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3), framework.WithPartitions(32))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := dataset{prefix: "restart-", n: 200}
	putAll(ctx, t, c.Client(t), d, 4)

	res := c.Admin(t, "restart", "s1")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, "s1 is running (pid ")
	res = c.Admin(t, "restart", "s9")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, `"s9" is not in cluster`)

	oldPID := c.ServerPID("s2")
	c.KillServer(t, "s2")
	state := func(id string) string {
		st := c.Status(t)
		i := slices.IndexFunc(st.Servers, func(s framework.ServerStatus) bool { return s.ID == id })
		if i < 0 {
			return ""
		}
		return st.Servers[i].State
	}
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool { return state("s2") == "down" },
		"s2 not marked down after kill -9")

	res = c.Admin(t, "restart", "s2", "--timeout", "60s")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "restarted s2: cluster balanced")
	c.Track(t)
	require.Equal(t, "active", state("s2"))
	pid := c.ServerPID("s2")
	require.NotZero(t, pid)
	require.NotEqual(t, oldPID, pid)
	readAll(ctx, t, c.Client(t), d, 4)
	rep := c.Check(t)
	require.Equal(t, 0, rep.ExitCode, "%s\n%s", rep.Stderr, rep.Raw)
}

// TestReplaceCommand: `ecs replace ID NEWID` launches NEWID, waits until it
// serves, then drains and removes ID; no key is lost.
func TestReplaceCommand(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3), framework.WithPartitions(32))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := dataset{prefix: "replace-", n: 200}
	putAll(ctx, t, c.Client(t), d, 4)
	oldPID := c.ServerPID("s2")

	res := c.Admin(t, "replace", "s2", "bad id!")
	require.Equal(t, 2, res.ExitCode, "a bad new id is a usage error: %s", res.Stderr)

	res = c.Admin(t, "replace", "s2", "db2", "--timeout", "60s")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "replaced s2 by db2: cluster balanced")
	st := c.Status(t)
	var ids []string
	for _, s := range st.Servers {
		if s.State != "removed" {
			ids = append(ids, s.ID)
			require.Equal(t, "active", s.State, s.ID)
		}
	}
	require.Equal(t, []string{"db2", "s1", "s3"}, ids)
	testutil.Eventually(t, 15*time.Second, 50*time.Millisecond, func() bool { return !framework.Alive(oldPID) },
		"s2 still running after its removal")
	readAll(ctx, t, c.Client(t), d, 4)
	rep := c.Check(t)
	require.Equal(t, 0, rep.ExitCode, "%s\n%s", rep.Stderr, rep.Raw)
}

// TestRemoveDeadServer: `ecs remove` of a server that died, once its
// replicas were re-made elsewhere, takes its entry out and reports its own
// round (nothing moved), not the failover's.
func TestRemoveDeadServer(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(4), framework.WithReplicas(3), framework.WithPartitions(32))
	c.KillServer(t, "s4")
	testutil.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool {
		st := c.Status(t)
		i := slices.IndexFunc(st.Servers, func(s framework.ServerStatus) bool { return s.ID == "s4" })
		ok, _ := st.Converged()
		return i >= 0 && st.Servers[i].State == "down" && st.Servers[i].Replicas() == 0 && ok
	}, "s4's replicas not re-made on the others")
	res := c.Admin(t, "remove", "s4", "--timeout", "30s")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "removed s4: cluster balanced at epoch")
	require.Contains(t, res.Stdout, "(3 servers, 0/0 partitions moved")
	require.Contains(t, res.Stdout, "0/0 partitions moved", "the failover's round reported as the removal's")
	for _, s := range c.Status(t).Servers {
		require.False(t, s.ID == "s4" && s.State != "removed", "s4 still listed as %s", s.State)
	}
}
