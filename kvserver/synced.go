package kvserver

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"go.uber.org/zap"
)

// A learner promoted to tail is marked unsynced by the ECS (ecs/core) until
// it reports synced/<id>/<p> = the chain version at which, as a member, it
// held everything its predecessor had committed when it adopted that
// version. Until then the ECS never makes it head or sole member and takes
// no other step on the partition. The report is written off the partition
// lock, by one tracked goroutine per report.

// reportSyncedLocked starts reporting that this member is synced at the
// chain version it follows. ps.mu is held.
func (s *Server) reportSyncedLocked(ps *partState, p int) {
	ps.synced++
	gen, version := ps.synced, ps.version
	// Refused once stopping: the ECS strips a restarted unsynced member.
	s.goAttach(func() { s.reportSynced(p, gen, version) })
}

// reportSynced writes synced/<id>/<p> = version, retrying until it is
// written, the server stops, this server left the chain, or a newer report
// of the partition supersedes it. A report stays true while the server is a
// member: the ECS accepts any version no older than its mark.
func (s *Server) reportSynced(p int, gen, version uint64) {
	key := etcdkeys.Synced(s.cfg.Cluster, s.cfg.ID, p)
	for backoff := 100 * time.Millisecond; s.stillReporting(p, gen); backoff = min(2*backoff, 2*time.Second) {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_, err := s.etcd.Put(ctx, key, strconv.FormatUint(version, 10))
		cancel()
		if err == nil {
			s.lg.Info("reported synced", zap.Int("partition", p), zap.Uint64("chain-version", version))
			return
		}
		s.lg.Warn("report synced; retrying", zap.Int("partition", p), zap.Error(err))
		if !s.sleepCtx(backoff) {
			return
		}
	}
}

// stillReporting reports whether report gen of partition p is still due.
func (s *Server) stillReporting(p int, gen uint64) bool {
	if s.ctx.Err() != nil {
		return false
	}
	ps := s.parts.get(p)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.synced == gen && slices.Contains(ps.members, s.cfg.ID)
}
