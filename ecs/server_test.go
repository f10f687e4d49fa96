package ecs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/ecskv/ecskv/ecs/statuspage"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

// TestServerWithExternalServers runs the whole ECS (embedded etcd, election,
// controller, detector over real gRPC health, HTTP) with one kvserver that
// registers by itself, as `ecs start -n 0` with servers started by hand.
func TestServerWithExternalServers(t *testing.T) {
	cfg := testConfig(16, 1, 8)
	cfg.Servers, cfg.DataDir = 0, t.TempDir()
	cfg.EtcdPort = testutil.FreePortRange(t, 2)
	cfg.HTTP = testutil.FreeAddr(t)
	srv, err := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), io.Discard)
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	defer srv.Stop()

	_, healthAddr := serveHealth(t, 42)
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.EtcdEndpoints(), Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	m := etcdkeys.Member{ID: "x1", Addr: healthAddr, Metrics: "127.0.0.1:9999", Incarnation: 42}
	_, err = cli.Put(context.Background(), etcdkeys.Server(cfg.Cluster, "x1"), string(m.Marshal()))
	require.NoError(t, err)
	select {
	case <-srv.ReadyNotify():
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	require.Len(t, srv.ReadyRing().Chains, 16)

	var st opclient.Status
	require.NoError(t, json.Unmarshal([]byte(httpGet(t, "http://"+cfg.HTTP+"/status")), &st))
	require.Equal(t, uint64(42), st.Servers[0].Incarnation)
	require.Equal(t, "active", st.Servers[0].State)
	require.Equal(t, 16, st.Servers[0].Roles["head"])
	require.True(t, st.Balanced())
	page := httpGet(t, "http://"+cfg.HTTP+"/")
	require.Contains(t, page, `<svg id="ring"`)
	require.Contains(t, page, `data-head="x1" data-from="0" data-to="15"`, "one arc: x1 heads every partition")
	require.NotContains(t, httpGet(t, "http://"+cfg.HTTP+"/?part=live"), "<script>", "the live part is a fragment")
	metrics := httpGet(t, "http://"+cfg.HTTP+"/metrics")
	for _, name := range []string{"ecskv_ecs_failovers_total", "ecskv_ecs_moves_pending", "ecskv_ecs_moves_total",
		"ecskv_ecs_under_replicated_partitions", "ecskv_ecs_failover_seconds", "ecskv_ecs_unavailable_partitions",
		"ecskv_ecs_rebalance_eta_seconds", `ecskv_ecs_events_total{kind="cluster_created"} 1`} {
		require.Contains(t, metrics, name)
	}
	// Prometheus discovers the servers' /metrics through http_sd.
	var sd []statuspage.SDGroup
	require.NoError(t, json.Unmarshal([]byte(httpGet(t, "http://"+cfg.HTTP+"/sd")), &sd))
	require.Equal(t, []statuspage.SDGroup{{Targets: []string{"127.0.0.1:9999"}, Labels: map[string]string{"server": "x1", "cluster": cfg.Cluster}}}, sd)

	// `ecs add` against an ECS that launched nothing fails with advice.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := opclient.Submit(ctx, cli, cfg.Cluster, etcdkeys.AdminRequest{Kind: etcdkeys.RequestAdd, Count: 1})
	require.NoError(t, err)
	_, err = opclient.WaitResult(ctx, cli, cfg.Cluster, id)
	require.ErrorIs(t, err, opclient.ErrRefused)
	require.ErrorContains(t, err, "launched no kvservers")
}

// TestGoAttachRefusesOnceStopping: Stop joins what goAttach started, and
// nothing starts once Stop has begun.
func TestGoAttachRefusesOnceStopping(t *testing.T) {
	cfg := testConfig(16, 1, 8)
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg, zaptest.NewLogger(t), io.Discard)
	require.NoError(t, err)
	ended := make(chan struct{})
	require.True(t, srv.goAttach(func() { <-srv.ctx.Done(); close(ended) }))
	srv.Stop()
	select {
	case <-ended:
	default:
		t.Fatal("Stop returned before a tracked goroutine ended")
	}
	require.False(t, srv.goAttach(func() { t.Error("started after Stop") }))
}
