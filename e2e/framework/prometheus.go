package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
)

// Prometheus is a Prometheus server scraping a cluster with the shipped
// config/prometheus files, at a one-second interval.
type Prometheus struct {
	URL  string
	proc *Process
}

// StartPrometheus runs Prometheus against the ECS whose status page is at
// ecsHTTP: the shipped prometheus.yml with its addresses pointed there and
// its intervals shortened. t.Cleanup stops it.
func StartPrometheus(t testing.TB, ecsHTTP string) *Prometheus {
	t.Helper()
	bin := Tool(t, "prometheus")
	dir := TempDir(t, "prometheus")
	src, err := os.ReadFile(RepoFile(t, "config/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	cfg := strings.NewReplacer("127.0.0.1:9400", ecsHTTP, "interval: 5s", "interval: 1s").Replace(string(src))
	rules, err := os.ReadFile(RepoFile(t, "config/prometheus/rules.yml"))
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	for name, body := range map[string]string{"prometheus.yml": cfg, "rules.yml": string(rules)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("framework: %v", err)
		}
	}
	addr := testutil.FreeAddr(t)
	p := &Prometheus{URL: "http://" + addr}
	p.proc = StartProcess(t, ProcessSpec{Name: "prometheus", Path: bin, Args: []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}})
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "prometheus at %s ready", addr)
	return p
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates expr now and returns its vector (a scalar is one sample).
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(vec))
		for _, s := range vec {
			out = append(out, Sample{Labels: s.Metric, Value: parseValue(s.Value[1])})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		return []Sample{{Value: parseValue(v[1])}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %q", expr, data.ResultType)
}

// Value returns the first sample's value of expr, or NaN when the vector is
// empty or the query fails.
func (p *Prometheus) Value(expr string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := p.Query(ctx, expr)
	if err != nil || len(v) == 0 {
		return math.NaN()
	}
	return v[0].Value
}

// MetricNames lists every metric name Prometheus has stored.
func (p *Prometheus) MetricNames(ctx context.Context) (map[string]bool, error) {
	var names []string
	if err := p.get(ctx, "/api/v1/label/__name__/values", &names); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// RuleHealth returns each loaded rule's name and health ("ok", "err",
// "unknown") with its last error.
func (p *Prometheus) RuleHealth(ctx context.Context) (map[string]string, error) {
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			out[r.Name] = strings.TrimSpace(r.Health + " " + r.LastError)
		}
	}
	return out, nil
}

func (p *Prometheus) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, Shorten(string(body), 200))
	}
	if env.Status != "success" {
		return fmt.Errorf("%s", env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

func parseValue(v any) float64 {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
