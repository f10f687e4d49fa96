package sim

import (
	"math/rand/v2"

	"github.com/ecskv/ecskv/kvserver/chainsm"
)

// network delivers messages between endpoints (servers, clients, ECS hosts
// and etcd) over directed links with delay, loss, duplication, clogging
// and partitions. In stream mode a link is FIFO, as gRPC over TCP is; in
// datagram mode every message has its own delay, so messages reorder.
type network struct {
	s        *Sim
	rng      *rand.Rand
	datagram bool
	minDelay int64
	mean     int64
	loss     float64
	dup      float64
	last     map[[2]string]int64 // per link: when its last message arrives (FIFO)
	cut      map[[2]string]int   // per link: how many faults cut it now
	clog     map[[2]string]int64 // per link: held until
}

func newNetwork(s *Sim) *network {
	return &network{s: s, rng: s.stream("net"), last: map[[2]string]int64{}, cut: map[[2]string]int{},
		clog: map[[2]string]int64{}, minDelay: 50_000, mean: 150_000}
}

func (n *network) up(from, to string) bool { return n.cut[[2]string{from, to}] == 0 }

// send schedules deliver on the link from->to, unless the message is lost.
// A link cut at sending or at delivery loses it.
func (n *network) send(from, to string, deliver func()) {
	l := [2]string{from, to}
	if !n.up(from, to) || n.loss > 0 && n.rng.Float64() < n.loss {
		n.s.count("net-drop")
		return
	}
	d := n.minDelay + expDur(n.rng, n.mean)
	if n.rng.IntN(1000) == 0 {
		d += expDur(n.rng, 20*n.mean) // a rare slow message
	}
	at := n.s.now + d
	if c := n.clog[l]; c > at {
		at = c + n.minDelay
	}
	if !n.datagram {
		// Strictly after the link's previous message: two due at the same
		// instant would be ordered by the scheduler's random tie.
		at = max(at, n.last[l]+1)
		n.last[l] = at
	}
	n.s.at(at, func() {
		if n.up(from, to) {
			deliver()
		} else {
			n.s.count("net-drop")
		}
	})
	if n.dup > 0 && n.rng.Float64() < n.dup {
		n.s.count("net-dup")
		n.s.at(at+expDur(n.rng, n.mean), func() {
			if n.up(from, to) {
				deliver()
			}
		})
	}
}

// setCut cuts (or, with on=false, heals one cut of) the links between
// every a in as and every b in bs, in both directions.
func (n *network) setCut(as, bs []string, on bool) {
	d := 1
	if !on {
		d = -1
	}
	for _, a := range as {
		for _, b := range bs {
			if a == b {
				continue
			}
			for _, l := range [][2]string{{a, b}, {b, a}} {
				n.cut[l] = max(n.cut[l]+d, 0) // heal may have cleared it already
			}
		}
	}
}

// copyMsg deep-copies a message's entries: in a real cluster every hop
// serialises, so no two nodes ever share one.
func copyMsg(m chainsm.Msg) chainsm.Msg {
	if len(m.Entries) > 0 {
		es := make([]*chainsm.Entry, len(m.Entries))
		for i, e := range m.Entries {
			c := *e
			es[i] = &c
		}
		m.Entries = es
	}
	return m
}
