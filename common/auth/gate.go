package auth

import (
	"sync"
	"time"
)

// gate bounds concurrent bcrypt comparisons and shares them out: logins
// from addresses with no recent failures go first, and within each class
// waiting logins queue per address and a freed slot goes to the next
// address in turn. So a flood from any number of addresses delays a real
// user's login by about one comparison, once the flooding addresses have
// failed once, instead of taking every slot. Each address may queue at
// most perSource logins and at most maxSources addresses may wait; the
// rest are refused at once.
type gate struct {
	mu        sync.Mutex
	free      int
	perSource int
	maxSrc    int
	queues    map[gateKey][]chan struct{}
	turn      [2][]gateKey // keys with waiters, per class (0 first), in round-robin order
}

// gateKey is a queue: a client address in a class (0: no recent failures).
type gateKey struct {
	src   string
	class int
}

func newGate(slots, perSource, maxSources int) *gate {
	return &gate{free: slots, perSource: perSource, maxSrc: maxSources, queues: map[gateKey][]chan struct{}{}}
}

// acquire takes a slot for a login from src, waiting at most wait; false
// means the server is busy (or src already has perSource logins waiting).
// suspect puts it behind every login from an address without failures.
func (g *gate) acquire(src string, suspect bool, wait time.Duration) bool {
	k := gateKey{src: src}
	if suspect {
		k.class = 1
	}
	g.mu.Lock()
	if g.free > 0 && len(g.turn[0])+len(g.turn[1]) == 0 {
		g.free--
		g.mu.Unlock()
		return true
	}
	q, queued := g.queues[k]
	if len(q) >= g.perSource || (!queued && len(g.queues) >= g.maxSrc) {
		g.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	if !queued {
		g.turn[k.class] = append(g.turn[k.class], k)
	}
	g.queues[k] = append(q, ch)
	g.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch: // granted while timing out: keep it
		return true
	default:
	}
	g.dropLocked(k, ch)
	return false
}

// release hands the slot to the next waiting login, or frees it.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for class := range g.turn {
		if len(g.turn[class]) == 0 {
			continue
		}
		k := g.turn[class][0]
		ch := g.queues[k][0]
		g.dropLocked(k, ch)
		if _, still := g.queues[k]; still {
			g.turn[class] = append(g.turn[class][1:], k) // k's next waiter goes to the back
		}
		close(ch)
		return
	}
	g.free++
}

// dropLocked removes waiter ch of queue k; g.mu must be held.
func (g *gate) dropLocked(k gateKey, ch chan struct{}) {
	q := g.queues[k]
	for i, c := range q {
		if c == ch {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		g.queues[k] = q
		return
	}
	delete(g.queues, k)
	turn := g.turn[k.class]
	for i, s := range turn {
		if s == k {
			g.turn[k.class] = append(turn[:i:i], turn[i+1:]...)
			break
		}
	}
}
