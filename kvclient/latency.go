package kvclient

import (
	"math/rand/v2"
	"sync"
	"time"
)

// latencies keeps an exponentially weighted moving average of each server's
// call latency, which is how "nearest" is measured.
type latencies struct {
	mu   sync.Mutex // guards ewma
	ewma map[string]time.Duration
}

// failurePenalty is charged to a server whose call failed, so nearest reads
// move away from it until it answers again.
const failurePenalty = time.Second

func newLatencies() *latencies { return &latencies{ewma: map[string]time.Duration{}} }

func (l *latencies) observe(addr string, d time.Duration, err error) {
	if err != nil {
		d = failurePenalty
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.ewma[addr]; ok {
		d = (old*7 + d) / 8
	}
	l.ewma[addr] = d
}

// nearest returns the member with the lowest average latency. Members not
// measured yet count as nearest, so every member gets measured; ties are
// broken at random to spread load.
func (l *latencies) nearest(members []string, addr map[string]string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	best, bestD := "", time.Duration(-1)
	for _, off := 0, rand.IntN(len(members)+1); off < len(members); off++ {
		id := members[(off)%len(members)]
		d := l.ewma[addr[id]]
		if bestD < 0 || d < bestD {
			best, bestD = id, d
		}
	}
	return best
}
