package sim

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
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
	keys := append(slices.Clone(s.clients[0].keys), s.clients[0].counters...)
	var next func(i int, tries int)
	next = func(i, tries int) {
		if i == len(keys) {
			s.after(int64(2*time.Second), s.checkConvergence)
			return
		}
		c.begin(opGet, keys[i], 0, false, func(op framework.Op) {
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
			if in, ok := h.node.Info(p); ok && (in.InFlight > 0 || in.Waiting != "") {
				s.fail("no liveness: partition %d: %s still has %d writes in flight, or waits, after the cluster went quiet (%+v)", p, id, in.InFlight, in)
			}
			sum, applied, err := h.disk.digest(p)
			if err != nil {
				s.fail("%s: digest of partition %d: %v", id, p, err)
			}
			if first == "" {
				first, firstSum = id, sum
				continue
			}
			if sum != firstSum {
				_, a0, _ := s.byID[first].disk.digest(p)
				s.fail("partition %d: replicas differ: %s (applied %d) vs %s (applied %d), chain %v v%d", p, first, a0, id, applied, ch.Members, ch.Version)
			}
		}
		if len(ch.Members) < r.Replicas {
			s.fail("no liveness: partition %d has %d members %v (learner %q) at the end", p, len(ch.Members), ch.Members, ch.Learner)
		}
	}
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
	var plain, ttl []framework.Op
	for _, op := range s.hist {
		if isTTLKey(op.Key) {
			ttl = append(ttl, op)
		} else {
			plain = append(plain, op)
		}
	}
	for _, f := range checkExpiry(ttl) {
		s.fail("%s", f)
	}
	res, err := framework.CheckLinearizable(plain, 30*time.Second, dir, fmt.Sprintf("sim-%#x", s.seed))
	switch res.Result {
	case porcupine.Illegal:
		s.fail("history not linearizable (see %s, %v)%s", res.Visualization, err, illegalKeys(plain))
	case porcupine.Unknown:
		s.count("porcupine-timeout")
	}
}

// TTL keys take puts with a TTL and reads; porcupine's model knows no
// expiry, so checkExpiry checks them instead.
func ttlKey(i int) string      { return fmt.Sprintf("t%d", i) }
func isTTLKey(key string) bool { return strings.HasPrefix(key, "t") }

// checkExpiry checks the histories of the TTL keys for monotonic expiry
// (DESIGN §6): once a put's value was known to be applied (its put
// acknowledged, or a read returned it) and a later read reported the key
// missing, no read that starts after that returns the put's value again.
// Values are unique per put, so a value names its put.
func checkExpiry(ops []framework.Op) []string {
	type byKey struct {
		known   map[string]time.Time // value -> earliest time it was known applied
		missing []framework.Op
		reads   []framework.Op
	}
	keys := map[string]*byKey{}
	at := func(k string) *byKey {
		if keys[k] == nil {
			keys[k] = &byKey{known: map[string]time.Time{}}
		}
		return keys[k]
	}
	seen := func(b *byKey, v string, t time.Time) {
		if k, ok := b.known[v]; !ok || t.Before(k) {
			b.known[v] = t
		}
	}
	for _, op := range ops {
		if op.Outcome != framework.OK {
			continue
		}
		b := at(op.Key)
		switch {
		case op.Kind == framework.OpPut:
			seen(b, op.Value, op.End)
		case op.Kind == framework.OpGet && op.Found:
			seen(b, op.Value, op.End)
			b.reads = append(b.reads, op)
		case op.Kind == framework.OpGet:
			b.missing = append(b.missing, op)
		}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		b := keys[k]
	reads:
		for _, r2 := range b.reads {
			known := b.known[r2.Value]
			for _, r1 := range b.missing {
				if r1.Start.After(known) && r1.End.Before(r2.Start) {
					out = append(out, fmt.Sprintf("expiry not monotonic: %s = %q known applied at %s, get at %s..%s said NOT_FOUND, get at %s..%s returned it",
						k, r2.Value, simTime(known), simTime(r1.Start), simTime(r1.End), simTime(r2.Start), simTime(r2.End)))
					break reads
				}
			}
		}
	}
	return out
}

func simTime(t time.Time) time.Duration { return time.Duration(t.UnixNano()) }

// illegalKeys names the keys whose own history is not linearizable (each
// key is its own partition of the model).
func illegalKeys(ops []framework.Op) string {
	byKey := map[string][]framework.Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		if res, _ := framework.CheckLinearizable(byKey[k], 10*time.Second, "", ""); res.Result == porcupine.Illegal {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf(": keys %v", bad)
}
