package ecs

import (
	"cmp"
	"slices"

	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
)

// This file is the pure part of rebalancing: given the chains and the
// servers that may hold replicas, it decides the next steps. It does no I/O
// and keeps no state, so it is tested table by table without etcd.
//
// A replica moves in the steps the kvservers expect (DESIGN §4), each in
// its own epoch for a given partition:
//
//	(b) Learner = X          X copies the partition from the tail
//	(c) Members += X         when X wrote ready/X/p (rebalance.go does this)
//	(d) Members -= leaver    in a later epoch, while len(Members) > target
//
// Step (a), removing failed members, is failover's (membership.go).

// planInput is what the planner looks at.
type planInput struct {
	chains []ringmeta.Chain
	// eligible may receive replicas: active, answering probes, not leaving.
	eligible []hashring.Server
	// sources may be copied from: up, active or leaving.
	sources  map[string]bool
	replicas int
	maxMoves int // learners in flight cluster-wide
	// leaves lists, per partition, the members planned to leave once the
	// partition's learner is promoted (persisted in the controller state).
	leaves map[int][]string
	// frozen partitions get no step: they changed in this epoch, or their
	// servers have not yet reported applying their last change.
	frozen map[int]bool
	// target, when set, is a layout computed earlier from the same chains,
	// leaves and eligible servers (Rebalance is the costly part).
	target [][]string
}

// movePlan is the planner's answer. target is nil when no server is
// eligible (nothing can be planned).
type movePlan struct {
	target   [][]string
	want     int              // chain length the target has: min(R, eligible)
	learners map[int]string   // step (b): partition → new learner
	removals map[int][]string // step (d): partition → members to remove
	leaves   map[int][]string // planned leavers of the new learners
	pending  map[int]struct{} // partitions whose chain is not yet its target
	under    int              // partitions with fewer than want members
	inFlight int              // learners already in the chains
	budget   int              // learners that could still start
}

// planMoves computes the target layout with hashring.Rebalance and the steps
// that bring the chains closer to it. Under-replicated partitions get their
// learners first; at most maxMoves learners are in flight at any time.
func planMoves(in planInput) (movePlan, error) {
	pl := movePlan{
		learners: map[int]string{}, removals: map[int][]string{}, leaves: map[int][]string{},
		pending: map[int]struct{}{},
	}
	for _, c := range in.chains {
		if c.Learner != "" {
			pl.inFlight++
		}
	}
	if len(in.eligible) == 0 || len(in.chains) == 0 {
		return pl, nil
	}
	target := in.target
	if target == nil {
		var err error
		if target, err = hashring.Rebalance(rebalanceInput(in.chains, in.leaves), in.eligible, in.replicas); err != nil {
			return pl, err
		}
	}
	pl.target, pl.want = target, min(in.replicas, len(in.eligible))
	for p, c := range in.chains {
		if c.Learner != "" || !sameSet(c.Members, target[p]) {
			pl.pending[p] = struct{}{}
		}
		if len(c.Members) < pl.want {
			pl.under++
		}
	}
	pl.planRemovals(in)
	pl.planLearners(in)
	return pl, nil
}

// rebalanceInput lists each chain as the planner intends it: the members
// that stay, then the learner, then the planned leavers. Rebalance keeps
// the head-most members of an over-long chain, so an earlier plan stays the
// plan and a move in flight is not undone by the next computation.
func rebalanceInput(chains []ringmeta.Chain, leaves map[int][]string) [][]string {
	out := make([][]string, len(chains))
	for p, c := range chains {
		l := leaves[p]
		in := make([]string, 0, len(c.Members)+1)
		for _, m := range c.Members {
			if !slices.Contains(l, m) {
				in = append(in, m)
			}
		}
		if c.Learner != "" {
			in = append(in, c.Learner)
		}
		for _, m := range c.Members {
			if slices.Contains(l, m) {
				in = append(in, m)
			}
		}
		out[p] = in
	}
	return out
}

// planRemovals is step (d): a chain without a learner that is longer than
// the target loses members the target does not keep, planned leavers first.
func (pl *movePlan) planRemovals(in planInput) {
	for p, c := range in.chains {
		extra := len(c.Members) - pl.want
		if c.Learner != "" || extra <= 0 || in.frozen[p] {
			continue
		}
		var out []string
		for _, m := range c.Members {
			if slices.Contains(in.leaves[p], m) && !slices.Contains(pl.target[p], m) {
				out = append(out, m)
			}
		}
		for _, m := range c.Members {
			if !slices.Contains(pl.target[p], m) && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
		if len(out) > extra {
			out = out[:extra]
		}
		if len(out) > 0 {
			pl.removals[p] = out
		}
	}
}

// planLearners is step (b), bounded by maxMoves learners cluster-wide:
// partitions with the fewest members go first, then by partition number.
func (pl *movePlan) planLearners(in planInput) {
	pl.budget = max(in.maxMoves-pl.inFlight, 0)
	if pl.budget == 0 {
		return
	}
	type cand struct{ p, members int }
	var cands []cand
	for p, c := range in.chains {
		if c.Learner != "" || in.frozen[p] || len(c.Members) == 0 || !in.sources[c.Tail()] {
			continue // no tail to copy from: a sole member that is down waits
		}
		if _, ok := pl.removals[p]; ok || pl.newMember(p, c) == "" {
			continue
		}
		cands = append(cands, cand{p, len(c.Members)})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.members, b.members), cmp.Compare(a.p, b.p))
	})
	for _, cd := range cands[:min(len(cands), pl.budget)] {
		c := in.chains[cd.p]
		pl.learners[cd.p] = pl.newMember(cd.p, c)
		var leave []string
		for _, m := range c.Members {
			if !slices.Contains(pl.target[cd.p], m) {
				leave = append(leave, m)
			}
		}
		if leave != nil {
			pl.leaves[cd.p] = leave
		}
	}
	pl.budget -= min(len(cands), pl.budget)
}

// newMember returns the first server of partition p's target that is not
// yet a member, or "".
func (pl *movePlan) newMember(p int, c ringmeta.Chain) string {
	for _, id := range pl.target[p] {
		if !slices.Contains(c.Members, id) {
			return id
		}
	}
	return ""
}

// pruneLeaves keeps the planned leavers of partitions that still have a
// learner or are longer than want: the others' moves are finished.
func pruneLeaves(chains []ringmeta.Chain, leaves map[int][]string, want int) map[int][]string {
	out := map[int][]string{}
	for p, l := range leaves {
		if p < 0 || p >= len(chains) {
			continue
		}
		if c := chains[p]; c.Learner != "" || len(c.Members) > want {
			out[p] = l
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
