package ecs

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// elect stands in for the leader key the CLI checks before writing a request.
func elect(t *testing.T, tc *testCluster) {
	_, err := tc.cli.Put(context.Background(), etcdkeys.LeaderPrefix(tc.cfg.Cluster)+"/1", "test")
	require.NoError(t, err)
}

func request(t *testing.T, tc *testCluster, req etcdkeys.AdminRequest) (etcdkeys.AdminResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := opclient.Submit(ctx, tc.cli, tc.cfg.Cluster, req)
	if err != nil {
		return etcdkeys.AdminResult{}, err
	}
	return opclient.WaitResult(ctx, tc.cli, tc.cfg.Cluster, id)
}

func TestRemoveDrainsServer(t *testing.T) {
	tc := newTestCluster(t, testConfig(16, 2, 4))
	tc.procs = &fakeProcs{tc: tc, launched: []string{"s1", "s2", "s3", "s4"}}
	tc.register("s1", "s2", "s3", "s4")
	tc.start()
	elect(t, tc)
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 16 && holds(r, "s4") })

	res, err := request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: "s4"})
	require.NoError(t, err)
	require.True(t, res.OK)
	st := waitBalanced(t, tc, func(st *opclient.Status) bool {
		for _, s := range st.Servers {
			if s.ID == "s4" && s.State != "removed" && s.State != "joining" {
				return false
			}
		}
		return true
	})
	r := tc.latest()
	_, listed := r.Server("s4")
	require.False(t, listed)
	for p, ch := range r.Chains {
		require.Len(t, ch.Members, 2, "partition %d", p)
	}
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		tc.procs.mu.Lock()
		defer tc.procs.mu.Unlock()
		return len(tc.procs.stopped) == 1 && tc.procs.stopped[0] == "s4"
	}, "the ECS stops a server it launched")
	for _, s := range st.Servers {
		require.True(t, s.ID != "s4" || s.State == "removed", "%+v", s)
	}
	tc.checkContract(4)

	// The leaving state showed in some epoch before the server went.
	sawLeaving := false
	for _, h := range tc.history() {
		sawLeaving = sawLeaving || serverState(h, "s4") == ringmeta.StateLeaving
	}
	require.True(t, sawLeaving)
}

func TestRemoveRemovedServerStaysOut(t *testing.T) {
	tc := newTestCluster(t, testConfig(8, 1, 8))
	tc.register("s1", "s2", "s3")
	tc.start() // no launcher: s3 keeps running after its removal
	elect(t, tc)
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 8 })
	_, err := request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: "s3"})
	require.NoError(t, err)
	st := waitBalanced(t, tc, func(st *opclient.Status) bool {
		for _, s := range st.Servers {
			if s.ID == "s3" {
				return s.State == "removed"
			}
		}
		return false
	})
	require.Len(t, st.Servers, 3, "s1, s2 and the removed s3 that still runs")
	epoch := tc.epoch()
	tc.register("s5") // more membership churn: s3 still must not come back
	tc.waitRing("s5 joined", func(r *ringmeta.Ring) bool { return r.Epoch > epoch })
	_, listed := tc.latest().Server("s3")
	require.False(t, listed)

	tc.register("s3") // a restart (new incarnation) is a new server
	tc.waitRing("s3 back", func(r *ringmeta.Ring) bool { _, ok := r.Server("s3"); return ok })
	tc.checkContract(8)
}

func TestRequestsRefused(t *testing.T) {
	tc := newTestCluster(t, testConfig(4, 2, 8))
	tc.register("s1", "s2")
	ctx := context.Background()

	_, err := request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 1})
	require.ErrorIs(t, err, opclient.ErrNoCluster)

	tc.start()
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 4 })
	_, err = request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 1})
	require.ErrorIs(t, err, opclient.ErrNoLeader)
	elect(t, tc)

	tests := []struct {
		name string
		req  etcdkeys.AdminRequest
		want error
		msg  string
	}{
		{name: "unknown server", req: etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: "s9"},
			want: opclient.ErrUnknownServer, msg: `"s9" is not in cluster`},
		{name: "too few servers left", req: etcdkeys.AdminRequest{Kind: etcdkeys.RequestRemove, Server: "s2"},
			want: opclient.ErrRefused, msg: "1 active servers would remain for 2 replicas"},
		{name: "add without a launcher", req: etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 2},
			want: opclient.ErrRefused, msg: "start each new server by hand"},
		{name: "add zero", req: etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd},
			want: opclient.ErrRefused, msg: "count must be in 1..100"},
		{name: "unknown kind", req: etcdkeys.AdminRequest{Kind: "grow"}, want: opclient.ErrRefused, msg: "unknown request kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			epoch := tc.epoch()
			_, err := request(t, tc, tt.req)
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, tt.msg)
			resp, err := tc.cli.Get(ctx, etcdkeys.Root(tc.cfg.Cluster)+"ecs/re", clientv3.WithPrefix(), clientv3.WithCountOnly())
			require.NoError(t, err)
			require.Zero(t, resp.Count, "no request or answer left behind")
			require.Equal(t, epoch, tc.epoch(), "nothing changed")
		})
	}
}

func TestAddLaunchesServers(t *testing.T) {
	tc := newTestCluster(t, testConfig(16, 2, 8))
	tc.procs = &fakeProcs{tc: tc, launched: []string{"s1", "s2"}}
	tc.register("s1", "s2")
	tc.start()
	elect(t, tc)
	tc.waitRing("layout", func(r *ringmeta.Ring) bool { return len(r.Chains) == 16 })

	res, err := request(t, tc, etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"s3", "s4"}, res.Servers)
	st := waitBalanced(t, tc, func(st *opclient.Status) bool { return activeServers(st) == 4 })
	load := map[string]int{}
	for _, ch := range tc.latest().Chains {
		for _, m := range ch.Members {
			load[m]++
		}
	}
	require.Equal(t, map[string]int{"s1": 8, "s2": 8, "s3": 8, "s4": 8}, load)
	require.Equal(t, st.Moves.Total, st.Moves.Done)
	tc.checkContract(8)
}
