package sim

import (
	"fmt"
	"time"
)

// Faults. The seed picks which kinds are on and how hard (swarm testing),
// then a schedule of faults over the fault window; at its end everything
// heals: crashed nodes restart, links reconnect, pauses end.

type faultKind int

const (
	fCrash faultKind = iota
	fPowerLoss
	fIsolate
	fControlPlane
	fSplit
	fClog
	fPause
	fECSCrash
	fECSPause
	fSlowDisk
	numFaultKinds
)

var faultNames = [...]string{"crash", "power-loss", "isolate", "control-plane-isolation", "split", "clog", "pause", "ecs-crash", "ecs-pause", "slow-disk"}

func (s *Sim) planFaults(end int64) {
	r := s.faults
	var on []faultKind
	for k := faultKind(0); k < numFaultKinds; k++ {
		if r.IntN(2) == 0 {
			on = append(on, k)
		}
	}
	if len(on) == 0 {
		on = append(on, faultKind(r.IntN(int(numFaultKinds))))
	}
	// Network: stream or datagram, some loss and duplication.
	s.net.datagram = r.IntN(3) == 0
	if r.IntN(2) == 0 {
		s.net.loss = r.Float64() * 0.05
	}
	if r.IntN(2) == 0 {
		s.net.dup = r.Float64() * 0.05
	}
	s.net.mean = int64(50_000 + r.IntN(500_000))
	s.plan = append(s.plan, fmt.Sprintf("net datagram=%v loss=%.3f dup=%.3f mean=%s", s.net.datagram, s.net.loss, s.net.dup, time.Duration(s.net.mean)))
	for t := int64(500 * time.Millisecond); t < end-int64(time.Second); t += expDur(r, int64(1500*time.Millisecond)) + int64(100*time.Millisecond) {
		k := on[r.IntN(len(on))]
		dur := int64(200*time.Millisecond) + expDur(r, int64(1500*time.Millisecond))
		s.scheduleFault(k, t, min(t+dur, end))
	}
}

func (s *Sim) scheduleFault(k faultKind, at, until int64) {
	r := s.faults
	h := s.hosts[r.IntN(len(s.hosts))]
	e := s.ecses[r.IntN(len(s.ecses))]
	desc := fmt.Sprintf("%s %s at %s for %s", faultNames[k], "%s", time.Duration(at), time.Duration(until-at))
	switch k {
	case fCrash:
		s.plan = append(s.plan, fmt.Sprintf(desc, h.id))
		s.at(at, func() { s.count("fault-crash"); h.crash() })
		s.at(until, func() {
			if !h.up {
				h.start()
			}
		})
	case fPowerLoss:
		s.plan = append(s.plan, fmt.Sprintf(desc, "all"))
		delays := make([]int64, len(s.hosts))
		for i := range delays {
			delays[i] = r.Int64N(int64(2 * time.Second))
		}
		s.at(at, func() {
			s.count("fault-power-loss")
			for _, h := range s.hosts {
				h.crash()
			}
			for _, e := range s.ecses {
				e.crash()
			}
		})
		for i, h := range s.hosts {
			s.at(until+delays[i], func() {
				if !h.up {
					h.start()
				}
			})
		}
		for _, e := range s.ecses {
			s.at(until, func() {
				if !e.up {
					e.start()
				}
			})
		}
	case fIsolate:
		s.plan = append(s.plan, fmt.Sprintf(desc, h.id))
		s.cutFor("isolate", at, until, []string{h.id}, s.allEndpoints())
	case fControlPlane:
		group := []string{h.id}
		if g := s.hosts[r.IntN(len(s.hosts))]; g != h {
			group = append(group, g.id)
		}
		s.plan = append(s.plan, fmt.Sprintf(desc, fmt.Sprint(group)))
		s.cutFor("control-plane", at, until, group, s.controlPlane())
	case fSplit:
		var a, b []string
		for _, id := range s.allEndpoints() {
			if r.IntN(2) == 0 {
				a = append(a, id)
			} else {
				b = append(b, id)
			}
		}
		s.plan = append(s.plan, fmt.Sprintf(desc, fmt.Sprint(a, "|", b)))
		s.cutFor("split", at, until, a, b)
	case fClog:
		g := s.hosts[r.IntN(len(s.hosts))]
		s.plan = append(s.plan, fmt.Sprintf(desc, h.id+"->"+g.id))
		s.at(at, func() {
			s.count("fault-clog")
			s.net.clog[[2]string{h.id, g.id}] = until
		})
	case fPause:
		s.plan = append(s.plan, fmt.Sprintf(desc, h.id))
		s.at(at, func() { s.count("fault-pause"); h.pausedTill = max(h.pausedTill, until) })
	case fECSCrash:
		s.plan = append(s.plan, fmt.Sprintf(desc, e.id))
		s.at(at, func() { s.count("fault-ecs-crash"); e.crash() })
		s.at(until, func() {
			if !e.up {
				e.start()
			}
		})
	case fECSPause:
		s.plan = append(s.plan, fmt.Sprintf(desc, e.id))
		s.at(at, func() { s.count("fault-ecs-pause"); e.pausedTill = max(e.pausedTill, until) })
	case fSlowDisk:
		mean := int64(50*time.Millisecond) + r.Int64N(int64(450*time.Millisecond))
		s.plan = append(s.plan, fmt.Sprintf(desc, fmt.Sprintf("%s (sync mean %s)", h.id, time.Duration(mean))))
		s.at(at, func() { s.count("fault-slow-disk"); h.syncMean = mean })
		s.at(until, func() { h.syncMean = h.baseSyncMean })
	}
}

// cutFor cuts every link between as and bs during [at, until).
func (s *Sim) cutFor(kind string, at, until int64, as, bs []string) {
	s.at(at, func() { s.count("fault-" + kind); s.net.setCut(as, bs, true) })
	s.at(until, func() { s.net.setCut(as, bs, false) })
}

func (s *Sim) allEndpoints() []string {
	out := []string{"etcd"}
	for _, h := range s.hosts {
		out = append(out, h.id)
	}
	for _, e := range s.ecses {
		out = append(out, e.id)
	}
	for _, c := range s.clients {
		out = append(out, c.name)
	}
	return out
}

func (s *Sim) controlPlane() []string {
	out := []string{"etcd"}
	for _, e := range s.ecses {
		out = append(out, e.id)
	}
	return out
}

// heal ends every fault: cuts and clogs go, paused nodes resume, stopped
// ones restart.
func (s *Sim) heal() {
	s.net.cut = map[[2]string]int{}
	s.net.clog = map[[2]string]int64{}
	s.net.loss, s.net.dup = 0, 0
	for _, h := range s.hosts {
		h.pausedTill = min(h.pausedTill, s.now)
		h.syncMean = h.baseSyncMean
		if !h.up {
			h.start()
		}
	}
	for _, e := range s.ecses {
		e.pausedTill = min(e.pausedTill, s.now)
		if !e.up {
			e.start()
		}
	}
}
