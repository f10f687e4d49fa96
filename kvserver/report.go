package kvserver

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"go.uber.org/zap"
)

// reporter writes the chain protocol's reports to etcd (ready and synced
// keys) in the background, retrying until each is written or replaced by a
// newer one; the partition never waits for etcd.
type reporter struct {
	s       *Server
	mu      sync.Mutex // guards pending
	pending map[string]uint64
	kick    chan struct{}
}

func newReporter(s *Server) *reporter {
	return &reporter{s: s, pending: map[string]uint64{}, kick: make(chan struct{}, 1)}
}

func readyKeyOf(s *Server, p int) string  { return etcdkeys.Ready(s.cfg.Cluster, s.cfg.ID, p) }
func syncedKeyOf(s *Server, p int) string { return etcdkeys.Synced(s.cfg.Cluster, s.cfg.ID, p) }

// put queues key = ver.
func (r *reporter) put(key string, ver uint64) {
	r.mu.Lock()
	r.pending[key] = max(r.pending[key], ver)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *reporter) loop() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.kick:
		case <-t.C:
		case <-r.s.ctx.Done():
			return
		}
		r.mu.Lock()
		keys := make([]string, 0, len(r.pending))
		for k := range r.pending {
			keys = append(keys, k)
		}
		vals := make(map[string]uint64, len(keys))
		for _, k := range keys {
			vals[k] = r.pending[k]
		}
		r.mu.Unlock()
		slices.Sort(keys)
		for _, k := range keys {
			ctx, cancel := context.WithTimeout(r.s.ctx, 2*time.Second)
			_, err := r.s.etcd.Put(ctx, k, strconv.FormatUint(vals[k], 10))
			cancel()
			if err != nil {
				r.s.lg.Debug("report not written; retrying", zap.String("key", k), zap.Error(err))
				break
			}
			r.mu.Lock()
			if r.pending[k] == vals[k] {
				delete(r.pending, k)
			}
			r.mu.Unlock()
		}
	}
}
