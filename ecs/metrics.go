package ecs

import (
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ecsMetrics is the ECS's own registry. Its collectors are safe for
// concurrent use; the controller goroutine is the main writer.
type ecsMetrics struct {
	reg     *prometheus.Registry
	epoch   prometheus.Gauge
	leader  prometheus.Gauge
	servers *prometheus.GaugeVec

	failovers       *prometheus.CounterVec
	failoverSeconds prometheus.Histogram
	movesPending    prometheus.Gauge
	movesDone       prometheus.Counter
	underReplicated prometheus.Gauge
	learners        prometheus.Gauge
	keysMoved       prometheus.Counter
	unavailable     prometheus.Gauge
	eta             prometheus.Gauge
	events          *prometheus.CounterVec
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
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecskv_ecs_failovers_total", Help: "Servers removed from their chains after a failure, by how it was detected (probe, lease, restart).",
		}, []string{"cause"}),
		failoverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ecskv_ecs_failover_seconds", Help: "Time from detecting a failure to publishing the epoch that removes the server from its chains.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		movesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_ecs_moves_pending", Help: "Partitions whose chain is not yet what the planner wants (learners included).",
		}),
		movesDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecskv_ecs_moves_total", Help: "Partitions that reached their planned chain.",
		}),
		underReplicated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_ecs_under_replicated_partitions", Help: "Partitions whose chain has fewer than R members.",
		}),
		learners: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_ecs_learners", Help: "Learners copying a partition now.",
		}),
		keysMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecskv_ecs_keys_moved_total", Help: "Keys held by the partitions of promoted learners (an estimate of data moved).",
		}),
	}
	m.unavailable = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ecskv_ecs_unavailable_partitions", Help: "Partitions with no active member left (their keys cannot be served).",
	})
	m.eta = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ecskv_ecs_rebalance_eta_seconds", Help: "Estimated time left for the moves in progress: 0 when none is pending, -1 while unknown.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecskv_ecs_events_total", Help: "Cluster events this ECS recorded, by kind (the status page's recent events).",
	}, []string{"kind"})
	m.reg.MustRegister(m.unavailable, m.eta, m.events)
	m.reg.MustRegister(m.epoch, m.leader, m.servers, m.failovers, m.failoverSeconds, m.movesPending, m.movesDone,
		m.underReplicated, m.learners, m.keysMoved,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, cause := range []string{causeProbe, causeLease, causeRestart} {
		m.failovers.WithLabelValues(cause)
	}
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
	under, learning, unavailable := 0, 0, 0
	for _, c := range r.Chains {
		if len(c.Members) < r.Replicas {
			under++
		}
		if len(c.Members) == 0 {
			unavailable++
		}
		if c.Learner != "" {
			learning++
		}
	}
	m.underReplicated.Set(float64(under))
	m.learners.Set(float64(learning))
	m.unavailable.Set(float64(unavailable))
}

func (m *ecsMetrics) movesPublished(pr ctlstate.Progress) {
	m.movesPending.Set(float64(pr.Pending))
	m.eta.Set(pr.ETASeconds())
}
