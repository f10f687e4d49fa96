package ecs

import (
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ecsMetrics is the ECS's own registry.
type ecsMetrics struct {
	reg     *prometheus.Registry
	epoch   prometheus.Gauge
	leader  prometheus.Gauge
	servers *prometheus.GaugeVec
}

func newECSMetrics() *ecsMetrics {
	m := &ecsMetrics{
		reg:   prometheus.NewRegistry(),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ecskv_ecs_ring_epoch", Help: "Epoch of the ring last published or read."}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_ecs_is_leader", Help: "1 while this ECS is the elected leader.",
		}),
		servers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecskv_ecs_servers", Help: "Servers in the ring by state.",
		}, []string{"state"}),
	}
	m.reg.MustRegister(m.epoch, m.leader, m.servers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *ecsMetrics) ringPublished(r *ringmeta.Ring) {
	m.epoch.Set(float64(r.Epoch))
	counts := map[ringmeta.State]int{ringmeta.StateActive: 0, ringmeta.StateDown: 0, ringmeta.StateLeaving: 0}
	for _, s := range r.Servers {
		counts[s.State]++
	}
	for st, n := range counts {
		m.servers.WithLabelValues(string(st)).Set(float64(n))
	}
}
