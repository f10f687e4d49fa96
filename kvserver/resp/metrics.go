package resp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons the server closes a connection: labels of
// ecskv_resp_connections_closed_total.
const (
	closeProtocol = "protocol"        // a request broke RESP or its size bounds
	closeIdle     = "idle"            // nothing sent, or no answer read, for the idle timeout
	closeMaxConns = "max_connections" // accepted over the bound and closed at once
	closeQuit     = "quit"            // the client sent QUIT
)

// latencyBuckets are the kvserver's: 50µs .. ~3.3s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

// Metrics are the front door's metrics. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	conns    prometheus.Gauge
	closes   *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecskv_resp_requests_total", Help: "Redis protocol commands served, by command and result (ok, refused, error).",
		}, []string{"command", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecskv_resp_request_duration_seconds", Help: "Redis protocol command latency, through the cluster.", Buckets: latencyBuckets,
		}, []string{"command"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_resp_connections", Help: "Open Redis protocol connections.",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecskv_resp_connections_closed_total", Help: "Redis protocol connections the server closed, by reason.",
		}, []string{"reason"}),
	}
	// The commonest label values exist from the start, so rates read 0,
	// not nothing.
	for _, c := range []string{"get", "set", "del", "mget", "mset", "incr", "scan"} {
		for _, r := range []string{resultOK, resultRefused, resultError} {
			m.requests.WithLabelValues(c, r)
		}
		m.latency.WithLabelValues(c)
	}
	for _, r := range []string{closeProtocol, closeIdle, closeMaxConns, closeQuit} {
		m.closes.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.latency, m.conns, m.closes)
	return m
}

func (m *Metrics) done(cmd, result string, start time.Time) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(cmd, result).Inc()
	m.latency.WithLabelValues(cmd).Observe(time.Since(start).Seconds())
}

func (m *Metrics) open(delta float64) {
	if m != nil {
		m.conns.Add(delta)
	}
}

func (m *Metrics) closed(reason string) {
	if m != nil {
		m.closes.WithLabelValues(reason).Inc()
	}
}
