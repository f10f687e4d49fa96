//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShippedPrometheusFilesAreValid runs promtool over config/prometheus:
// the scrape config, the rules, and the rules' unit tests (each alert fires
// when it should and not before).
func TestShippedPrometheusFilesAreValid(t *testing.T) {
	promtool := framework.Tool(t, "promtool")
	dir := framework.RepoFile(t, "config/prometheus")
	for _, args := range [][]string{
		{"check", "config", dir + "/prometheus.yml"},
		{"check", "rules", dir + "/rules.yml"},
		{"test", "rules", dir + "/rules_test.yml"},
	} {
		res := framework.Run(t, framework.RunOptions{}, promtool, args...)
		assert.Equal(t, 0, res.ExitCode, "promtool %s:\n%s%s", strings.Join(args, " "), res.Stdout, res.Stderr)
	}
}

// TestPrometheusSeesFailover runs the shipped Prometheus config against a
// real cluster under load, kills a server, and checks through Prometheus'
// API what an operator's dashboards and alerts rely on: discovery of every
// server, latency histograms that move, the failover counter, the
// under-replicated gauge rising and falling back once the server returns
// and its copies are restored, the server-down alert, and that every
// dashboard query and rule works on the metrics the cluster really exports.
// Three servers and R=3: with no spare server the partitions stay
// under-replicated until the victim is back, so no scrape can miss it.
func TestPrometheusSeesFailover(t *testing.T) {
	const partitions = 32
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3), framework.WithPartitions(partitions))
	prom := framework.StartPrometheus(t, framework.Addr(c.Ports().HTTP))
	started := time.Now()
	cli := c.Client(t)

	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("obs-%d-%d", w, i%200)
				octx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, _ = cli.Put(octx, key, []byte("value"))
				_, _ = cli.Get(octx, key)
				cancel()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() { stopLoad(); wg.Wait() }()

	waitProm := func(what, expr string, ok func(float64) bool) float64 {
		t.Helper()
		var v float64
		testutil.Eventually(t, 60*time.Second, 500*time.Millisecond, func() bool {
			v = prom.Value(expr)
			return !math.IsNaN(v) && ok(v)
		}, "%s: %s (last %v)", what, expr, v)
		t.Logf("prometheus: %s: %s = %v", what, expr, v)
		return v
	}
	positive := func(v float64) bool { return v > 0 }

	waitProm("every server discovered through /sd and up", `count(up{job="ecskv-server"} == 1)`, func(v float64) bool { return v == 3 })
	waitProm("the ECS scraped", `up{job="ecskv-ecs"}`, func(v float64) bool { return v == 1 })
	waitProm("puts counted", `sum(rate(ecskv_requests_total{op="put"}[5s]))`, positive)
	for _, op := range []string{"put", "get"} {
		p99 := waitProm(op+" p99 from the histogram", fmt.Sprintf(
			`histogram_quantile(0.99, sum by (le) (rate(ecskv_request_duration_seconds_bucket{op=%q}[5s])))`, op), positive)
		assert.Less(t, p99, 5.0, "%s p99 within the buckets", op)
	}
	waitProm("WAL fsync histogram", `sum(ecskv_storage_wal_sync_seconds_count)`, positive)
	waitProm("chain commit histogram", `sum(ecskv_replication_commit_seconds_count)`, positive)
	assert.Equal(t, 0.0, prom.Value(`sum(ecskv_ecs_failovers_total)`), "no failover before the kill")
	assert.Equal(t, 0.0, prom.Value(`max(ecskv_ecs_under_replicated_partitions)`), "fully replicated before the kill")

	victim := c.ServerIDs()[1]
	transferBefore := prom.Value(`sum(ecskv_transfer_received_bytes_total)`)
	argv := c.KillServer(t, victim)
	waitProm("failover counted", `sum(ecskv_ecs_failovers_total)`, func(v float64) bool { return v >= 1 })
	waitProm("failover duration observed", `sum(ecskv_ecs_failover_seconds_count)`, func(v float64) bool { return v >= 1 })
	waitProm("victim seen down", fmt.Sprintf(`up{job="ecskv-server", server=%q}`, victim), func(v float64) bool { return v == 0 })
	waitProm("every partition under-replicated", `max(ecskv_ecs_under_replicated_partitions)`, func(v float64) bool { return v == partitions })
	waitProm("server-down alert raised", fmt.Sprintf(`count(ALERTS{alertname="ECSKVServerDown", server=%q})`, victim), positive)
	waitProm("puts still served", `sum(rate(ecskv_requests_total{op="put", result=~"SUCCESS|UPDATE"}[5s]))`, positive)

	c.RestartServer(t, victim, argv)
	waitProm("victim back up", fmt.Sprintf(`up{job="ecskv-server", server=%q}`, victim), func(v float64) bool { return v == 1 })
	waitProm("copies restored", `max(ecskv_ecs_under_replicated_partitions) + max(ecskv_ecs_moves_pending)`, func(v float64) bool { return v == 0 })
	waitProm("learner copied data", `sum(ecskv_transfer_received_bytes_total)`, func(v float64) bool { return v > transferBefore })
	waitProm("rebalance done recorded", `sum(ecskv_ecs_events_total{kind="rebalance_done"})`, positive)

	// Every dashboard query and every rule must work on the real metrics.
	qctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := prom.MetricNames(qctx)
	require.NoError(t, err)
	metricRef := regexp.MustCompile(`\becskv_[a-z0-9_]+`)
	exprs := dashboardExprs(t)
	require.NotEmpty(t, exprs)
	for _, e := range exprs {
		q := strings.NewReplacer(`$__rate_interval`, "15s", `$server`, ".*").Replace(e)
		_, err := prom.Query(qctx, q)
		assert.NoError(t, err, "dashboard query %s", q)
		for _, m := range metricRef.FindAllString(e, -1) {
			assert.True(t, names[m], "dashboard query %q uses %s, which no ecskv process exports", e, m)
		}
	}
	health, err := prom.RuleHealth(qctx)
	require.NoError(t, err)
	require.NotEmpty(t, health)
	for name, h := range health {
		assert.True(t, strings.HasPrefix(h, "ok"), "rule %s: %s", name, h)
	}

	if dir := os.Getenv(screenshotsEnv); dir != "" {
		screenshotDashboard(t, prom, started, filepath.Join(dir, "dashboard.png"))
	}
}

// screenshotDashboard draws the Grafana dashboard's panels from Prometheus
// over the test's run and saves a screenshot (README's picture).
func screenshotDashboard(t *testing.T, prom *framework.Prometheus, from time.Time, path string) {
	time.Sleep(3 * time.Second) // a few points after the recovery; a picture, not an assertion
	d, err := framework.LoadDashboard(framework.RepoFile(t, "config/grafana/ecskv.json"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	html, err := prom.PreviewHTML(ctx, d, from, time.Now(), map[string]string{"$__rate_interval": "4s", "$server": ".*"})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, html)
	}))
	defer srv.Close()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	framework.Screenshot(t, srv.URL, path, 1180, 2460, time.Second)
	t.Logf("screenshot: %s", path)
}

// dashboardExprs returns every PromQL expression of the Grafana dashboard.
func dashboardExprs(t *testing.T) []string {
	raw, err := os.ReadFile(framework.RepoFile(t, "config/grafana/ecskv.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash), "config/grafana/ecskv.json")
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, a := range dash.Annotations.List {
		out = append(out, a.Expr)
	}
	return out
}
