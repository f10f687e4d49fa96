package sim

import (
	"container/heap"
	"hash/fnv"
	"math/rand/v2"
)

// event is one scheduled step of the simulation. tie orders events due at
// the same time randomly but replayably; seq makes the order total.
type event struct {
	at  int64
	tie uint64
	seq uint64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.at != b.at {
		return a.at < b.at
	}
	if a.tie != b.tie {
		return a.tie < b.tie
	}
	return a.seq < b.seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// at schedules fn at true time t (never in the past).
func (s *Sim) at(t int64, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, &event{at: t, tie: s.sched.Uint64(), seq: s.seq, fn: fn})
}

// after schedules fn d nanoseconds from now.
func (s *Sim) after(d int64, fn func()) { s.at(s.now+d, fn) }

// stream returns the random stream called name, derived from the seed so
// that draws on one stream never shift another (dropping a fault must not
// change every later delay).
func (s *Sim) stream(name string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(s.seed, h.Sum64()))
}

// expDur draws an exponential duration with the given mean (ns).
func expDur(r *rand.Rand, mean int64) int64 {
	if mean <= 0 {
		return 0
	}
	return int64(r.ExpFloat64() * float64(mean))
}
