package dht

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operations and results: labels of ecskv_dht_requests_total.
const (
	opPut = "put"
	opGet = "get"

	resultOK       = "ok"        // a PUT stored, a GET found its key
	resultNotFound = "not_found" // a GET answered FAILURE: no such key
	resultError    = "error"     // the cluster did not answer in the request timeout
)

// Reasons the server closes a connection: labels of
// ecskv_dht_connections_closed_total.
const (
	closeMalformed = "malformed"       // a message broke the format, or was not a request
	closeIdle      = "idle"            // nothing sent, or no answer read, for the idle timeout
	closeMaxConns  = "max_connections" // accepted over the bound and closed at once
)

// latencyBuckets are the kvserver's: 50µs .. ~3.3s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

// Metrics are the DHT API's metrics. A nil *Metrics records nothing.
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
			Name: "ecskv_dht_requests_total", Help: "DHT API requests served, by operation and result.",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecskv_dht_request_duration_seconds", Help: "DHT API request latency, through the cluster.", Buckets: latencyBuckets,
		}, []string{"op"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_dht_connections", Help: "Open DHT API connections.",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecskv_dht_connections_closed_total", Help: "DHT API connections the server closed, by reason.",
		}, []string{"reason"}),
	}
	// Every label value exists from the start, so rates read 0, not nothing.
	for _, op := range []string{opPut, opGet} {
		for _, r := range []string{resultOK, resultNotFound, resultError} {
			if op == opPut && r == resultNotFound {
				continue
			}
			m.requests.WithLabelValues(op, r)
		}
		m.latency.WithLabelValues(op)
	}
	for _, r := range []string{closeMalformed, closeIdle, closeMaxConns} {
		m.closes.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.latency, m.conns, m.closes)
	return m
}

func (m *Metrics) done(op, result string, start time.Time) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, result).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
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

// resultOf is the result label of a request that ended with err, having
// found its key (always, for a PUT) or not.
func resultOf(err error, found bool) string {
	switch {
	case err != nil:
		return resultError
	case !found:
		return resultNotFound
	}
	return resultOK
}
