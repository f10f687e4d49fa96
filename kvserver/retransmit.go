package kvserver

import (
	"context"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"

	"golang.org/x/time/rate"
)

// Retransmission: replication messages are fire-and-forget, so an in-flight
// entry not acknowledged within retransmitAfter is sent again (generous: a
// loaded machine must not turn slow acks into a storm of duplicates; gaps
// are repaired sooner by nacks). Receivers
// ignore what they already applied and re-ack what is committed.
const (
	retransmitTick  = 100 * time.Millisecond
	retransmitAfter = time.Second
)

func (s *Server) retransmitLoop() {
	for s.sleepCtx(retransmitTick) {
		n := s.parts.count()
		now := time.Now()
		for p := 0; p < n; p++ {
			ps := s.parts.get(p)
			ps.mu.Lock()
			if ps.syncing && ps.pred != "" && now.Sub(ps.nackedAt) > retransmitTick*2 {
				// Our nack or its answer was lost (say the predecessor had
				// not adopted the promotion yet): ask again.
				ps.nackedAt = now
				s.peers.sendNack(ps.pred, &kvpb.Ack{Partition: uint32(p), ChainVersion: ps.version, Seq: ps.applied})
			}
			if ps.succ != "" && len(ps.log) > 0 && now.Sub(ps.log[0].sentAt) > retransmitAfter {
				ups := ps.resendLocked(ps.committed, now)
				s.metrics.resent.Add(float64(len(ups)))
				s.peers.sendUpdates(ps.succ, ups)
			}
			s.resendRecentLocked(ps, now)
			ps.mu.Unlock()
		}
	}
}

// resendRecentLocked resends to a promoted learner, until it acks them, the
// updates this member committed as the old tail and forwarded to it as a
// learner: those are in no in-flight list, and a learner update lost on the
// way (say, dropped while the connection was down) would otherwise stay
// missing at the new tail until a later write to the partition.
func (s *Server) resendRecentLocked(ps *partState, now time.Time) {
	if ps.succ == "" || len(ps.recent) == 0 || now.Sub(ps.recentAt) <= retransmitAfter {
		return
	}
	ps.recentAt = now
	var ups []*kvpb.Update
	for _, u := range ps.recent {
		if len(ps.log) == 0 || u.Seq < ps.log[0].seq() {
			ups = append(ups, retag(u, ps.version, false))
		}
	}
	s.metrics.resent.Add(float64(len(ups)))
	s.peers.sendUpdates(ps.succ, ups)
}

// byteLimiter bounds the rate of snapshot transfer so rebalancing leaves
// room for foreground traffic.
type byteLimiter struct{ l *rate.Limiter }

func newByteLimiter(bytesPerSec int64) *byteLimiter {
	if bytesPerSec <= 0 {
		return &byteLimiter{}
	}
	return &byteLimiter{l: rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, 1<<30)))}
}

func (b *byteLimiter) wait(ctx context.Context, n int) {
	if b.l == nil || n <= 0 {
		return
	}
	_ = b.l.WaitN(ctx, min(n, b.l.Burst()))
}
