package kvserver

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// stateCollector reads, at scrape time, what is cheaper to read on demand
// than to keep current: in-flight depth per role, pebble's engine metrics,
// the data directory's filesystem and the stored key count.
type stateCollector struct {
	s *Server

	inflight, oldest                    *prometheus.Desc
	diskUsed, diskFree, diskSize, keys  *prometheus.Desc
	memtable, walBytes, debt, readAmp   *prometheus.Desc
	flushes, compactions, l0Files, lrus *prometheus.Desc

	keyCount keyCounter
}

func newStateCollector(s *Server) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &stateCollector{
		s:           s,
		inflight:    d("ecskv_replication_inflight_updates", "Writes applied here and not yet acknowledged by the tail, by this server's role in their chain.", "role"),
		oldest:      d("ecskv_replication_oldest_inflight_seconds", "Age of the oldest unacknowledged write, by role: how far the chain's tail lags behind.", "role"),
		diskUsed:    d("ecskv_storage_disk_bytes", "Bytes of the pebble DB on disk (live and obsolete files)."),
		diskFree:    d("ecskv_storage_filesystem_free_bytes", "Bytes available to this server on the data directory's filesystem."),
		diskSize:    d("ecskv_storage_filesystem_size_bytes", "Size of the data directory's filesystem."),
		keys:        d("ecskv_stored_keys", "Keys stored on this server, all roles, expired but unswept included (recounted at most every 30s)."),
		memtable:    d("ecskv_storage_memtable_bytes", "Bytes in pebble's memtables."),
		walBytes:    d("ecskv_storage_wal_written_bytes_total", "Bytes written to pebble's WAL since the server started."),
		debt:        d("ecskv_storage_compaction_debt_bytes", "Pebble's estimate of bytes left to compact for a stable LSM."),
		readAmp:     d("ecskv_storage_read_amplification", "Pebble's read amplification (sublevels a read may visit)."),
		flushes:     d("ecskv_storage_flushes_total", "Memtable flushes since the server started."),
		compactions: d("ecskv_storage_compactions_total", "Compactions since the server started."),
		l0Files:     d("ecskv_storage_l0_files", "SSTables in L0 (a high count stalls writes)."),
		lrus:        d("ecskv_cache_entries", "Records in the LRU cache."),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	depth, age := c.s.inflightByRole(time.Now())
	for _, role := range roles {
		gauge(c.inflight, float64(depth[role]), role)
		gauge(c.oldest, age[role].Seconds(), role)
	}
	if c.s.store == nil || c.s.stopped.Load() {
		return
	}
	es, ok := c.s.store.EngineStats()
	if !ok {
		return
	}
	gauge(c.diskUsed, float64(es.DiskBytes))
	gauge(c.memtable, float64(es.MemtableBytes))
	counter(c.walBytes, float64(es.WALBytes))
	gauge(c.debt, float64(es.CompactionDebt))
	gauge(c.readAmp, float64(es.ReadAmp))
	counter(c.flushes, float64(es.Flushes))
	counter(c.compactions, float64(es.Compactions))
	gauge(c.l0Files, float64(es.L0Files))
	entries, _ := c.s.store.CacheLen()
	gauge(c.lrus, float64(entries))
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.s.cfg.DataDir, &fs); err == nil {
		gauge(c.diskFree, float64(fs.Bavail)*float64(fs.Bsize))
		gauge(c.diskSize, float64(fs.Blocks)*float64(fs.Bsize))
	}
	gauge(c.keys, float64(c.keyCount.get(c.s)))
}

var roles = []string{"head", "middle", "tail"}

// inflightByRole sums the in-flight lists of the partitions this server
// is a member of, and the age of the oldest entry, by role.
func (s *Server) inflightByRole(now time.Time) (map[string]int, map[string]time.Duration) {
	depth, age := map[string]int{}, map[string]time.Duration{}
	c := s.core
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := 0; p < s.partitionCount(); p++ {
		in, ok := c.node.Info(p)
		if !ok || !in.Member || in.InFlight == 0 {
			continue
		}
		role := "middle"
		switch {
		case in.Head:
			role = "head"
		case in.Tail:
			role = "tail"
		}
		depth[role] += in.InFlight
		age[role] = max(age[role], now.Sub(time.UnixMilli(in.OldestWallMs)))
	}
	return depth, age
}

// keyCounter caches the stored key count: a count scans every key, so a
// scrape starts a recount in the background at most every keyCountEvery.
type keyCounter struct {
	n       atomic.Uint64
	running atomic.Bool
	mu      sync.Mutex // guards last
	last    time.Time
}

const keyCountEvery = 30 * time.Second

func (k *keyCounter) get(s *Server) uint64 {
	k.mu.Lock()
	stale := time.Since(k.last) >= keyCountEvery
	if stale {
		k.last = time.Now()
	}
	k.mu.Unlock()
	if stale && k.running.CompareAndSwap(false, true) {
		s.goAttach(func() {
			defer k.running.Store(false)
			n, err := s.store.CountKeys()
			if err != nil {
				s.lg.Debug("count keys", zap.Error(err))
				return
			}
			k.n.Store(n)
		})
	}
	return k.n.Load()
}
