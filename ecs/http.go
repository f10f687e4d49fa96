package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecskv/ecskv/ecs/opclient"
)

// startHTTP serves /metrics, /status (JSON) and the status page.
func (s *Server) startHTTP() error {
	if s.cfg.HTTP == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("%w: status page %s: %v", ErrPortInUse, s.cfg.HTTP, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	mux.HandleFunc("/status", s.serveStatusJSON)
	mux.HandleFunc("/sd", s.serveSD)
	mux.HandleFunc("/", s.serveStatusPage)
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.goAttach(func() { _ = s.httpSrv.Serve(lis) })
	return nil
}

func (s *Server) status(ctx context.Context) (*opclient.Status, error) {
	if s.cli == nil {
		return nil, opclient.ErrNoCluster
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := opclient.ReadStatus(ctx, s.cli, s.cfg.Cluster)
	if err != nil {
		return nil, err
	}
	st.Events = s.events.list()
	return st, nil
}

func (s *Server) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	st, err := s.status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

func (s *Server) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	st, err := s.status(r.Context())
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
		s.lg.Sugar().Warnw("render status page", "error", err)
	}
}

// sdGroup is one target group of Prometheus' HTTP service discovery.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// serveSD lists every server's /metrics address for Prometheus' http_sd:
// servers join, leave and fail over without touching Prometheus' config.
// Servers that are down stay listed so `up == 0` shows them.
func (s *Server) serveSD(w http.ResponseWriter, r *http.Request) {
	st, err := s.status(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	groups := []sdGroup{}
	for _, srv := range st.Servers {
		if srv.Metrics == "" || srv.State == "removed" {
			continue
		}
		labels := map[string]string{"server": srv.ID, "cluster": st.Cluster}
		if srv.Zone != "" {
			labels["zone"] = srv.Zone
		}
		groups = append(groups, sdGroup{Targets: []string{srv.Metrics}, Labels: labels})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(groups)
}
