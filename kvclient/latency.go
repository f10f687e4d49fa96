package kvclient

import (
	"math/rand/v2"
	"sync"
	"time"
)

// latencies keeps an exponentially weighted moving average of each server's
// call latency, which is how "nearest" is measured, and when each server's
// last call failed.
type latencies struct {
	mu     sync.Mutex // guards ewma and failed
	ewma   map[string]time.Duration
	failed map[string]time.Time // addr -> when its last call failed; absent once one succeeds
}

// failurePenalty is charged to a server whose call failed, so nearest reads
// move away from it until it answers again.
const failurePenalty = time.Second

func newLatencies() *latencies {
	return &latencies{ewma: map[string]time.Duration{}, failed: map[string]time.Time{}}
}

func (l *latencies) observe(addr string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		d = failurePenalty
		l.failed[addr] = time.Now()
	} else {
		delete(l.failed, addr)
	}
	if old, ok := l.ewma[addr]; ok {
		d = (old*7 + d) / 8
	}
	l.ewma[addr] = d
}

// failing reports whether addr's last call failed less than failurePenalty
// ago; after that it is tried again.
func (l *latencies) failing(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.failed[addr]
	return ok && time.Since(at) < failurePenalty
}

// nearest returns the member with the lowest average latency. Members not
// measured yet count as nearest, so every member gets measured; ties are
// broken at random to spread load.
func (l *latencies) nearest(members []string, addr map[string]string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(members) == 0 {
		return ""
	}
	best, bestD := "", time.Duration(-1)
	// Start at a random member so that the first of equals is random.
	for i, off := 0, rand.IntN(len(members)); i < len(members); i++ {
		id := members[(off+i)%len(members)]
		d := l.ewma[addr[id]]
		if bestD < 0 || d < bestD {
			best, bestD = id, d
		}
	}
	return best
}
