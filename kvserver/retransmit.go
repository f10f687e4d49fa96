package kvserver

import (
	"context"
	"time"

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
			if ps.succ != "" && len(ps.log) > 0 && now.Sub(ps.log[0].sentAt) > retransmitAfter {
				ups := ps.resendLocked(ps.committed, now)
				s.metrics.resent.Add(float64(len(ups)))
				s.peers.sendUpdates(ps.succ, ups)
			}
			ps.mu.Unlock()
		}
	}
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
