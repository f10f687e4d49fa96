package kvserver

import (
	"time"

	"github.com/ecskv/ecskv/kvserver/storage"

	"go.uber.org/zap"
)

// Sweeper pacing: every tick the head visits a slice of its partitions and
// deletes up to sweepBatch expired keys in each, so a full pass over 1024
// partitions takes about half a minute. Expired keys read as missing at
// once; the sweep only reclaims space, so it stays cheap.
const (
	sweepTick       = time.Second
	sweepPartitions = 32
	sweepBatch      = 256
)

// sweepLoop deletes expired keys, and the keys of removed users
// (removed.go), at the head through the normal write path, so the deletion
// is sequenced like any write. Expired keys already read as missing, and
// removed users' keys are out of every token's reach; the sweep reclaims
// their space.
func (s *Server) sweepLoop() {
	next := 0
	for s.sleepCtx(sweepTick) {
		cur := s.ring.Load()
		if cur == nil || len(cur.Chains) == 0 {
			continue
		}
		removed := s.removed.list()
		for i := 0; i < sweepPartitions; i++ {
			p := (next + i) % cur.Partitions
			if cur.Chains[p].Head() == s.cfg.ID {
				s.sweepPartition(p)
				s.sweepRemoved(p, removed)
			}
		}
		next = (next + sweepPartitions) % cur.Partitions
	}
}

func (s *Server) sweepPartition(p int) {
	ops, err := s.store.ExpiredKeys(p, nowMs(), sweepBatch)
	if err != nil {
		s.lg.Warn("ttl sweep", zap.Int("partition", p), zap.Error(err))
		return
	}
	for _, op := range ops {
		if err := s.expire(p, op); err != nil {
			s.lg.Warn("ttl delete", zap.Int("partition", p), zap.Error(err))
			return
		}
	}
}

// expire deletes an expired key through the chain, unless a put made it
// live again since the scan.
func (s *Server) expire(p int, op storage.Op) error { return s.core.expire(p, op) }
