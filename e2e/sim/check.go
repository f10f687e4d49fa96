package sim

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
)

// finalSweep reads every key once the cluster is quiet, so that an
// acknowledged write nobody read is not invisible to the checker; then,
// a little later, compares the replicas.
func (s *Sim) finalSweep() {
	c := &client{s: s, name: "sweeper", rng: s.stream("sweeper"), logical: s.newLogical(), cid: s.rootRng.Uint64(), active: true}
	s.clients = append(s.clients, c)
	s.net.setCut([]string{c.name}, nil, false)
	keys := s.clients[0].keys
	var next func(i int, tries int)
	next = func(i, tries int) {
		if i == len(keys) {
			s.after(int64(2*time.Second), s.checkConvergence)
			return
		}
		c.begin(opGet, keys[i], false, func(op framework.Op) {
			switch {
			case op.Outcome == framework.OK:
				next(i+1, 0)
			case tries < 5:
				s.hist = s.hist[:len(s.hist)-1] // a failed read tells nothing
				next(i, tries+1)
			default:
				s.fail("no liveness: final read of %s failed %d times", keys[i], tries+1)
				next(i+1, 0)
			}
		})
	}
	next(0, 0)
}

// checkConvergence compares, per partition of the current ring, the data
// every member holds: equal applied seq and equal records.
func (s *Sim) checkConvergence() {
	kv, ok := s.etcd.Get(ringKey)
	if !ok {
		s.fail("no ring at the end")
		return
	}
	r, err := ringmeta.Unmarshal(kv.Value)
	if err != nil {
		s.fail("bad ring: %v", err)
		return
	}
	for p, ch := range r.Chains {
		var first string
		var firstSum [32]byte
		for _, id := range ch.Members {
			h := s.byID[id]
			if in, ok := h.node.Info(p); ok && in.InFlight > 0 {
				s.fail("no liveness: partition %d: %s still has %d writes in flight after the cluster went quiet (%+v)", p, id, in.InFlight, in)
			}
			sum, applied := h.disk.digest(p)
			if first == "" {
				first, firstSum = id, sum
				continue
			}
			if sum != firstSum {
				_, a0 := s.byID[first].disk.digest(p)
				s.fail("partition %d: replicas differ: %s (applied %d) vs %s (applied %d), chain %v v%d", p, first, a0, id, applied, ch.Members, ch.Version)
			}
		}
		if len(ch.Members) < r.Replicas {
			s.fail("no liveness: partition %d has %d members %v (learner %q) at the end", p, len(ch.Members), ch.Members, ch.Learner)
		}
	}
}

func (d *disk) digest(p int) ([32]byte, uint64) {
	ps, ok := d.cur[p]
	if !ok {
		return sha256.Sum256(nil), 0
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d|", ps.applied)
	for _, k := range slices.Sorted(maps.Keys(ps.data)) {
		r := ps.data[k]
		fmt.Fprintf(h, "%q=%d/%d/%q|", k, r.seq, r.expiryMs, r.value)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, ps.applied
}

// checkHistory checks linearizability of every key's history, and that
// every operation started in the live window succeeded.
func (s *Sim) checkHistory(liveFrom int64) {
	for _, op := range s.hist {
		if op.Start.UnixNano() >= liveFrom && op.Outcome != framework.OK && op.Client != 0 && op.Start.UnixNano() < liveFrom+int64(s.opt.LiveCheck) {
			s.fail("no liveness: %s %s started at %s ended %s", op.Kind, op.Key, time.Duration(op.Start.UnixNano()), op.Outcome)
			break
		}
	}
	dir := s.opt.OutDir
	if dir == "" {
		dir = os.TempDir()
	}
	res, err := framework.CheckLinearizable(s.hist, 30*time.Second, dir, fmt.Sprintf("sim-%#x", s.seed))
	switch res.Result {
	case porcupine.Illegal:
		s.fail("history not linearizable (see %s, %v)", res.Visualization, err)
	case porcupine.Unknown:
		s.count("porcupine-timeout")
	}
}
