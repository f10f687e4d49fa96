package statuspage

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/ecskv/ecskv/ecs/opclient"
	"go.uber.org/zap"
)

// StatusFunc reads the cluster's status for one request.
type StatusFunc func(ctx context.Context) (*opclient.Status, error)

// handlers serve one status source.
type handlers struct {
	status StatusFunc
	lg     *zap.Logger
}

// Register serves the status page at /, the status as JSON at /status and
// Prometheus' service discovery at /sd on mux.
func Register(mux *http.ServeMux, status StatusFunc, lg *zap.Logger) {
	h := &handlers{status: status, lg: lg}
	mux.HandleFunc("/status", h.serveStatusJSON)
	mux.HandleFunc("/sd", h.serveSD)
	mux.HandleFunc("/", h.serveStatusPage)
}

func (h *handlers) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	st, err := h.status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

func (h *handlers) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	st, err := h.status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	tmpl := pageTmpl
	if r.URL.Query().Get("part") == "live" {
		tmpl = pageTmpl.Lookup("live")
	}
	if err := tmpl.Execute(w, newPageData(st)); err != nil {
		h.lg.Sugar().Warnw("render status page", "error", err)
	}
}

// SDGroup is one target group of Prometheus' HTTP service discovery.
type SDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// serveSD lists every server's /metrics address for Prometheus' http_sd:
// servers join, leave and fail over without touching Prometheus' config.
// Servers that are down stay listed so `up == 0` shows them.
func (h *handlers) serveSD(w http.ResponseWriter, r *http.Request) {
	st, err := h.status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	groups := []SDGroup{}
	for _, srv := range st.Servers {
		if srv.Metrics == "" || srv.State == "removed" {
			continue
		}
		labels := map[string]string{"server": srv.ID, "cluster": st.Cluster}
		if srv.Zone != "" {
			labels["zone"] = srv.Zone
		}
		groups = append(groups, SDGroup{Targets: []string{srv.Metrics}, Labels: labels})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(groups)
}
