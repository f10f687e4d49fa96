package kvserver

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/status"
)

// Reasons an incoming update is dropped.
const (
	dropVersion = "version" // another chain version or sender, or not loaded yet
	dropGap     = "gap"     // a seq is missing before it: nacked
)

// latencyBuckets resolve sub-millisecond requests: 50µs .. ~3.3s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

// metrics is the server's Prometheus registry (one per server, so several
// servers can live in one test process).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	epoch      prometheus.Gauge
	partitions *prometheus.GaugeVec
	transfer   prometheus.Counter
	resent     prometheus.Counter
	priorReads prometheus.Counter
	syncHeld   prometheus.Counter
	dropped    *prometheus.CounterVec
	batches    prometheus.Histogram
	walSync    prometheus.Histogram
	commit     prometheus.Histogram
	// stage times the steps of the write path (ecskv_write_stage_seconds,
	// by stage: see the stage* constants), resolved once: they are on it.
	stage stageTimers
	// forwarded counts requests forwarded to the server that serves the
	// key, by result (ok, error, refused).
	forwarded *prometheus.CounterVec
	// removedSwept counts the deletes of removed users' keys this server
	// proposed as a head (removed.go).
	removedSwept prometheus.Counter

	// The bounds on Batch streams and connections (batchout.go, conns.go).
	batchQueued  prometheus.Gauge
	batchStalls  *prometheus.CounterVec
	batchClosed  prometheus.Counter
	connsClosed  *prometheus.CounterVec
	connsRefused prometheus.Counter
}

// The stages of the write path, labels of ecskv_write_stage_seconds.
const (
	// stageQueue: at the head, a write's wait from its arrival until the
	// node sequences it (waiting for the node's lock, combined with others).
	stageQueue = "queue"
	// stageApply: one storage batch commit (unsynced) of a node's step.
	stageApply = "apply"
	// stageSync: from a WAL sync being asked for until it is done and the
	// node knows (waits for the sync before it, then the fsync).
	stageSync = "sync"
	// stageHop: a replication message from being queued at its sender
	// until the receiver steps it (sender queue, network, receiver queue);
	// by the two servers' wall clocks, so meaningful on one host.
	stageHop = "hop"
	// stageStep: one input to the node under its lock, with the storage
	// writes of its Ready.
	stageStep = "step"
	// stageLock: an input's wait for the node's lock.
	stageLock = "lock"
)

// stageTimers are the write path's stage histograms, one per stage.
type stageTimers struct {
	queue, lock, step, apply, sync, hop prometheus.Observer
}

// The bounds a Batch stream stops reading at: labels of
// ecskv_batch_stalls_total, named as their config keys.
const (
	boundQueuedBytes = "max-batch-queued-bytes"
	boundInflight    = "max-batch-inflight"
)

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecskv_requests_total", Help: "Key operations served, by operation and result.",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecskv_request_duration_seconds", Help: "Key operation latency at the server.", Buckets: latencyBuckets,
		}, []string{"op"}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecskv_ring_epoch", Help: "Epoch of the ring this server routes by.",
		}),
		partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecskv_partitions", Help: "Partitions by this server's role in their chain (head, middle, tail, learner); a one-member chain counts as head and tail.",
		}, []string{"role"}),
	}
	m.transfer = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_transfer_received_bytes_total", Help: "Snapshot bytes this server received as a learner.",
	})
	m.resent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_replication_resent_updates_total", Help: "Updates sent again after a timeout, a nack or a chain change.",
	})
	m.priorReads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_reads_last_committed_total", Help: "Reads at a tail of a key with a write in flight, answered with the key's last committed record instead of waiting for the commit.",
	})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecskv_replication_dropped_updates_total", Help: "Incoming updates not applied, by reason.",
	}, []string{"reason"})
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ecskv_replication_batch_updates", Help: "Updates per incoming replication message.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.walSync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ecskv_storage_wal_sync_seconds", Help: "Duration of each WAL fsync a write waited for (pebble group commit).",
		Buckets: latencyBuckets,
	})
	m.syncHeld = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_storage_wal_syncs_held_total", Help: "WAL syncs held back by --sync-delay because the server was busy.",
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ecskv_replication_commit_seconds", Help: "At a head: time from forwarding a durable write to the tail's acknowledgement (replication lag of acknowledged writes).",
		Buckets: latencyBuckets,
	})
	stage := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ecskv_write_stage_seconds", Help: "Time of each stage of the write path (queue, apply, sync, hop, step, lock; see config/metrics.md).",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
	}, []string{"stage"})
	m.stage = stageTimers{
		queue: stage.WithLabelValues(stageQueue), lock: stage.WithLabelValues(stageLock),
		step: stage.WithLabelValues(stageStep), apply: stage.WithLabelValues(stageApply),
		sync: stage.WithLabelValues(stageSync), hop: stage.WithLabelValues(stageHop),
	}
	m.forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecskv_forwarded_requests_total", Help: "Requests for keys this server does not serve, forwarded to the server that does, by result.",
	}, []string{"result"})
	for _, r := range []string{"ok", "error", "refused"} {
		m.forwarded.WithLabelValues(r)
	}
	m.removedSwept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_removed_user_keys_swept_total", Help: "Keys of removed users this server deleted through the chain as a head.",
	})
	for _, reason := range []string{dropVersion, dropGap} {
		m.dropped.WithLabelValues(reason) // exported at 0 from the start: dashboards and rate() see it
	}
	m.addBounds()
	m.reg.MustRegister(m.requests, m.latency, m.epoch, m.partitions, m.transfer, m.resent, m.priorReads, m.dropped, m.batches,
		m.walSync, m.syncHeld, m.commit, stage, m.forwarded, m.removedSwept, newStateCollector(s),
		m.batchQueued, m.batchStalls, m.batchClosed, m.connsClosed, m.connsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ecskv_removed_user_namespaces", Help: "Namespaces of removed users (tombstones) this server knows of and sweeps.",
		}, func() float64 { return float64(s.removed.len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ecskv_cache_hits_total", Help: "LRU cache hits.",
		}, func() float64 { h, _ := s.store.CacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ecskv_cache_misses_total", Help: "LRU cache misses.",
		}, func() float64 { _, mi := s.store.CacheStats(); return float64(mi) }),
	)
	return m
}

// addBounds makes the metrics of the Batch stream and connection bounds,
// every label exported at 0 from the start.
func (m *metrics) addBounds() {
	m.batchQueued = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ecskv_batch_queued_bytes", Help: "Bytes of Batch answers queued for clients that have not read them yet, all streams.",
	})
	m.batchStalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecskv_batch_stalls_total", Help: "Times a Batch stream stopped reading requests at one of its bounds, by bound.",
	}, []string{"bound"})
	m.batchClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_batch_streams_closed_total", Help: "Batch streams closed with ResourceExhausted: their client read no answer for batch-stall-timeout.",
	})
	m.connsClosed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecskv_connections_closed_total", Help: "Connections the server closed because of a bound, by reason.",
	}, []string{"reason"})
	m.connsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecskv_connections_refused_calls_total", Help: "Calls refused with ResourceExhausted on a new connection while max-connections connections had made calls.",
	})
	for _, b := range []string{boundQueuedBytes, boundInflight} {
		m.batchStalls.WithLabelValues(b)
	}
	for _, r := range closeReasons {
		m.connsClosed.WithLabelValues(r)
	}
}

func (m *metrics) handler(pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (m *metrics) observe(op string, start time.Time) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// result counts a request's outcome and passes it through.
func (m *metrics) result(op string, resp *kvpb.Response, err error) (*kvpb.Response, error) {
	label := "error_" + status.Code(err).String()
	if err == nil {
		label = resp.Status.String()
	}
	m.requests.WithLabelValues(op, label).Inc()
	return resp, err
}

// ringChanged recounts this server's roles in the new ring.
func (m *metrics) ringChanged(r *ringmeta.Ring, id string) {
	m.epoch.Set(float64(r.Epoch))
	var head, middle, tail, learner int
	for _, c := range r.Chains {
		if c.Learner == id {
			learner++
		}
		switch i := c.Index(id); {
		case i < 0:
		case i == 0:
			head++
			if len(c.Members) == 1 {
				tail++
			}
		case i == len(c.Members)-1:
			tail++
		default:
			middle++
		}
	}
	m.partitions.WithLabelValues("head").Set(float64(head))
	m.partitions.WithLabelValues("middle").Set(float64(middle))
	m.partitions.WithLabelValues("tail").Set(float64(tail))
	m.partitions.WithLabelValues("learner").Set(float64(learner))
}

// transferBytes counts a received snapshot chunk.
// transferBytes counts a received chunk's key and value bytes and
// returns them.
func (m *metrics) transferBytes(c *kvpb.SnapshotChunk) int {
	n := 0
	for _, r := range c.Records {
		n += len(r.Key) + len(r.Value)
	}
	m.transfer.Add(float64(n))
	return n
}
