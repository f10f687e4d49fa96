package ecs

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func hservers(ids ...string) []hashring.Server {
	out := make([]hashring.Server, len(ids))
	for i, id := range ids {
		out[i] = hashring.Server{ID: id}
	}
	return out
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%d", i+1)
	}
	return out
}

func all(list ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range list {
		m[id] = true
	}
	return m
}

// initialChains lays out partitions over servers as the ECS does at start.
func initialChains(t *testing.T, servers []string, partitions, r int) []ringmeta.Chain {
	t.Helper()
	return initialLayout(t, hservers(servers...), partitions, r)
}

func initialLayout(t *testing.T, servers []hashring.Server, partitions, r int) []ringmeta.Chain {
	return layoutWith(t, servers, partitions, r)
}

// scatteredLayout lays chains out by consistent hashing over many tokens,
// the layout of clusters created before runs of neighbours.
func scatteredLayout(t *testing.T, servers []hashring.Server, partitions, r int) []ringmeta.Chain {
	return layoutWith(t, servers, partitions, r, hashring.WithTokens(0))
}

func layoutWith(t *testing.T, servers []hashring.Server, partitions, r int, opts ...hashring.Option) []ringmeta.Chain {
	t.Helper()
	laid, err := hashring.Initial(servers, partitions, r, opts...)
	require.NoError(t, err)
	out := make([]ringmeta.Chain, len(laid))
	for p, m := range laid {
		out[p] = ringmeta.Chain{Members: m, Version: 1}
	}
	return out
}

func TestPlanMoves(t *testing.T) {
	tests := []struct {
		name   string
		in     planInput
		check  func(t *testing.T, pl movePlan)
		noPlan bool
	}{
		{
			name: "balanced layout needs nothing",
			in: planInput{chains: nil, replicas: 3, maxMoves: 8,
				eligible: hservers(ids(4)...), sources: all(ids(4)...)},
			check: func(t *testing.T, pl movePlan) {
				require.Empty(t, pl.learners)
				require.Empty(t, pl.removals)
				require.Empty(t, pl.pending)
			},
		},
		{
			name: "under-replicated partitions get learners first",
			in: planInput{replicas: 3, maxMoves: 1, eligible: hservers("a", "b", "c"), sources: all("a", "b", "c"),
				chains: []ringmeta.Chain{
					{Members: []string{"a", "b", "c"}, Version: 1},
					{Members: []string{"a", "b"}, Version: 1},
					{Members: []string{"c"}, Version: 1},
					{Members: []string{"b", "c"}, Version: 1},
				}},
			check: func(t *testing.T, pl movePlan) {
				require.Equal(t, map[int]string{2: pl.learners[2]}, pl.learners, "the partition with fewest members goes first")
				require.NotEqual(t, "c", pl.learners[2])
				require.Equal(t, 3, pl.under)
			},
		},
		{
			name: "no learner for a chain whose only member cannot be copied from",
			in: planInput{replicas: 2, maxMoves: 8, eligible: hservers("b", "c"), sources: all("b", "c"),
				chains: []ringmeta.Chain{{Members: []string{"a"}, Version: 3}, {Members: []string{"b", "c"}, Version: 1}}},
			check: func(t *testing.T, pl movePlan) {
				require.Empty(t, pl.learners)
				require.Contains(t, pl.pending, 0)
			},
		},
		{
			name: "promoted chain loses its planned leaver",
			in: planInput{replicas: 2, maxMoves: 8, eligible: hservers("a", "b", "x"), sources: all("a", "b", "x"),
				leaves: map[int][]string{0: {"b"}},
				chains: []ringmeta.Chain{{Members: []string{"a", "b", "x"}, Version: 4}, {Members: []string{"b", "a"}, Version: 1}}},
			check: func(t *testing.T, pl movePlan) {
				require.Equal(t, map[int][]string{0: {"b"}}, pl.removals)
			},
		},
		{
			name: "chain with a learner is neither shortened nor given another",
			in: planInput{replicas: 2, maxMoves: 8, eligible: hservers("a", "b", "x"), sources: all("a", "b", "x"),
				leaves: map[int][]string{0: {"b"}},
				chains: []ringmeta.Chain{{Members: []string{"a", "b"}, Learner: "x", Version: 4}}},
			check: func(t *testing.T, pl movePlan) {
				require.Empty(t, pl.removals)
				require.Empty(t, pl.learners)
				require.Equal(t, []string{"a", "x"}, pl.target[0], "the move in flight stays the plan")
				require.Equal(t, 1, pl.inFlight)
			},
		},
		{
			name: "learners in flight use up the budget",
			in: planInput{replicas: 1, maxMoves: 2, eligible: hservers("a", "b"), sources: all("a", "b"),
				chains: []ringmeta.Chain{
					{Members: []string{"a"}, Learner: "b"}, {Members: []string{"a"}, Learner: "b"},
					{Members: []string{"a"}}, {Members: []string{"a"}},
				}},
			check: func(t *testing.T, pl movePlan) {
				require.Empty(t, pl.learners)
				require.Zero(t, pl.budget)
			},
		},
		{
			name: "frozen partitions get no step",
			in: planInput{replicas: 2, maxMoves: 8, eligible: hservers("a", "b"), sources: all("a", "b"),
				frozen: map[int]bool{0: true},
				chains: []ringmeta.Chain{{Members: []string{"a"}}, {Members: []string{"b"}}}},
			check: func(t *testing.T, pl movePlan) {
				require.Equal(t, map[int]string{1: "a"}, pl.learners)
			},
		},
		{
			name: "leaving member is replaced, not dropped",
			in: planInput{replicas: 2, maxMoves: 8, eligible: hservers("a", "b"), sources: all("a", "b", "c"),
				chains: []ringmeta.Chain{{Members: []string{"a", "c"}}}},
			check: func(t *testing.T, pl movePlan) {
				require.Empty(t, pl.removals)
				require.Equal(t, map[int]string{0: "b"}, pl.learners)
				require.Equal(t, map[int][]string{0: {"c"}}, pl.leaves)
			},
		},
		{
			name: "no eligible server plans nothing",
			in: planInput{replicas: 2, maxMoves: 8,
				chains: []ringmeta.Chain{{Members: []string{"a"}, Learner: "b"}}},
			check: func(t *testing.T, pl movePlan) {
				require.Nil(t, pl.target)
				require.Empty(t, pl.learners)
				require.Equal(t, 1, pl.inFlight)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.chains == nil && tt.in.eligible != nil {
				tt.in.chains = initialChains(t, ids(4), 64, 3)
			}
			pl, err := planMoves(tt.in)
			require.NoError(t, err)
			tt.check(t, pl)
		})
	}
}

// simulate runs the protocol the controller and the kvservers follow, one
// epoch per loop: the members promoted in the previous epoch report synced,
// every learner of the previous epoch is promoted (c), then the planner's
// steps (b, d) go to the other partitions. It checks the contract on every
// epoch and returns the final chains and the epoch count.
func simulate(t *testing.T, chains []ringmeta.Chain, eligible []string, r, maxMoves int) ([]ringmeta.Chain, int) {
	t.Helper()
	res := simulateWith(t, chains, simConfig{eligible: hservers(eligible...), r: r, maxMoves: maxMoves})
	return res.chains, res.epochs
}

// simConfig shapes a simulation. By default the target is kept while the
// eligible servers stay, as the controller keeps it.
type simConfig struct {
	eligible    []hashring.Server
	r, maxMoves int
	replan      bool              // recompute the target every epoch, as a new leader does
	joins       []hashring.Server // become eligible one at a time, moves in flight
	joinEvery   int               // epochs between joins
}

type simResult struct {
	chains []ringmeta.Chain
	epochs int
	copies int // learners started
}

func simulateWith(t *testing.T, chains []ringmeta.Chain, cfg simConfig) simResult {
	t.Helper()
	leaves := map[int][]string{}
	unsynced := map[int][]core.Mark{}
	ctl := &controller{lg: zap.NewNop()}
	var target [][]string // kept, as the controller keeps it while the servers stay
	needed, copies := 0, 0
	src := map[string]bool{}
	for _, s := range cfg.eligible {
		src[s.ID] = true
	}
	for _, ch := range chains {
		for _, m := range ch.Members {
			src[m] = true // leaving members are still sources
		}
	}
	eligible, joins := cfg.eligible, cfg.joins
	for epoch := 1; epoch < 10000; epoch++ {
		if len(joins) > 0 && epoch%cfg.joinEvery == 0 {
			eligible, joins = append(slices.Clone(eligible), joins[0]), joins[1:]
			src[eligible[len(eligible)-1].ID] = true
			target = nil // the servers changed: the controller recomputes
		}
		prev := cloneChains(chains)
		frozen := map[int]bool{}
		st := &ctlstate.State{Leaves: leaves, Unsynced: unsynced}
		ring := &ringmeta.Ring{Chains: chains}
		for p, marks := range unsynced {
			for _, mk := range marks {
				pt, ok := core.Clear(partition(ring, st, p), mk.ID, chains[p].Version)
				require.True(t, ok)
				setPartition(ring, st, p, pt)
			}
		}
		for p := range chains {
			if pt, ok := core.Promote(partition(ring, st, p), chains[p].Learner, chains[p].Version); ok {
				setPartition(ring, st, p, pt)
				frozen[p] = true
			}
		}
		if cfg.replan {
			target = nil
		}
		pl, err := planMoves(planInput{chains: chains, eligible: eligible, sources: src,
			replicas: cfg.r, maxMoves: cfg.maxMoves, leaves: leaves, frozen: frozen, target: target})
		require.NoError(t, err)
		if target == nil && epoch == 1 {
			for p, want := range pl.target {
				needed += len(minus(want, chains[p].Members))
			}
		}
		target = pl.target
		copies += len(pl.learners)
		if len(pl.pending) == 0 && len(joins) == 0 {
			if !cfg.replan && cfg.joins == nil {
				require.Equal(t, needed, copies, "every copy made is one the first target needed")
			}
			return simResult{chains: chains, epochs: epoch, copies: copies}
		}
		ep := &epochChange{touched: frozen}
		ctl.applySteps(ring, st, pl, ep)
		leaves, unsynced = pruneLeaves(chains, st.Leaves, pl.want), st.Unsynced
		require.LessOrEqual(t, learners(chains), cfg.maxMoves, "epoch %d", epoch)
		for p := range chains {
			requireStep(t, prev[p], chains[p])
		}
	}
	t.Fatal("the plan did not converge in 10000 epochs")
	return simResult{}
}

func cloneChains(chains []ringmeta.Chain) []ringmeta.Chain {
	return (&ringmeta.Ring{Chains: chains}).Clone().Chains
}

// requireStep checks that a chain changed by at most one allowed step.
func requireStep(t testing.TB, before, after ringmeta.Chain) {
	t.Helper()
	if slices.Equal(before.Members, after.Members) && before.Learner == after.Learner {
		require.Equal(t, before.Version, after.Version, "unchanged chain keeps its version")
		return
	}
	require.Equal(t, before.Version+1, after.Version, "%v -> %v", before, after)
	require.NotEmpty(t, after.Members, "%v -> %v", before, after)
	switch {
	case slices.Equal(before.Members, after.Members) && before.Learner == "" && after.Learner != "": // (b)
		require.NotContains(t, before.Members, after.Learner)
	case slices.Equal(before.Members, after.Members) && before.Learner != "" && after.Learner == "": // learner dropped
	case before.Learner != "" && after.Learner == "" && slices.Equal(append(slices.Clone(before.Members), before.Learner), after.Members): // (c)
	case len(after.Members) < len(before.Members) && isSubsequence(after.Members, before.Members) &&
		(after.Learner == before.Learner || after.Learner == ""): // (a) or (d)
	case len(after.Members) < len(before.Members) && isSubsequence(after.Members, before.Members) &&
		after.Learner == before.Tail() && !slices.Contains(after.Members, after.Learner): // (a) with an unsynced tail demoted
	case before.Learner == "" && after.Learner == "" && len(before.Members) == len(after.Members) &&
		sameSet(before.Members, after.Members): // a reorder (role balance)
	default:
		t.Fatalf("not one allowed step: %+v -> %+v", before, after)
	}
}

func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

func TestSimulateConverges(t *testing.T) {
	tests := []struct {
		name     string
		start    []string // servers of the initial layout
		eligible []string // servers afterwards
		r, p     int
		maxMoves int
	}{
		{name: "add one server", start: ids(5), eligible: ids(6), r: 3, p: 256, maxMoves: 8},
		{name: "add three servers", start: ids(3), eligible: ids(6), r: 3, p: 256, maxMoves: 4},
		{name: "remove one server", start: ids(6), eligible: ids(5), r: 3, p: 256, maxMoves: 8},
		{name: "R=1 add", start: ids(2), eligible: ids(3), r: 1, p: 64, maxMoves: 2},
		{name: "R=2 remove to two", start: ids(3), eligible: ids(2), r: 2, p: 64, maxMoves: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chains := initialChains(t, tt.start, tt.p, tt.r)
			final, epochs := simulate(t, chains, tt.eligible, tt.r, tt.maxMoves)
			load := map[string]int{}
			for p, ch := range final {
				require.Len(t, ch.Members, min(tt.r, len(tt.eligible)), "partition %d", p)
				require.Empty(t, ch.Learner)
				for _, m := range ch.Members {
					require.Contains(t, tt.eligible, m)
					load[m]++
				}
			}
			mean := float64(tt.p*min(tt.r, len(tt.eligible))) / float64(len(tt.eligible))
			for id, n := range load {
				require.LessOrEqual(t, float64(n), 1.1*mean+1, "server %s overloaded", id)
			}
			t.Logf("%d epochs", epochs)
		})
	}
}

func TestSimulateFailure(t *testing.T) {
	// s3 failed: failover removed it from every chain (step a); the
	// planner brings every chain back to R from the survivors.
	chains := initialChains(t, ids(5), 128, 3)
	r := &ringmeta.Ring{Chains: chains}
	require.Positive(t, removeEverywhere(r, "s3"))
	survivors := []string{"s1", "s2", "s4", "s5"}
	final, _ := simulate(t, r.Chains, survivors, 3, 8)
	for _, ch := range final {
		require.Len(t, ch.Members, 3)
		require.NotContains(t, ch.Members, "s3")
	}
}

// removeEverywhere applies core.Remove to every chain with gone servers, as
// failover does, and returns how many chains changed.
func removeEverywhere(r *ringmeta.Ring, gone ...string) int {
	g := map[string]bool{}
	for _, id := range gone {
		g[id] = true
	}
	n := 0
	for p, ch := range r.Chains {
		pt := core.Remove(core.Partition{Chain: ch}, g)
		if pt.Chain.Version != ch.Version {
			n++
		}
		r.Chains[p] = pt.Chain
	}
	return n
}

func TestFailoverKeepsLastMember(t *testing.T) {
	r := &ringmeta.Ring{Chains: []ringmeta.Chain{
		{Members: []string{"a", "b", "c"}, Version: 1},
		{Members: []string{"a"}, Version: 1},
		{Members: []string{"b", "a"}, Learner: "c", Version: 5},
		{Members: []string{"b", "c"}, Learner: "a", Version: 2},
		{Members: []string{"a"}, Learner: "b", Version: 7},
		{Members: []string{"b"}, Version: 1},
	}}
	require.Equal(t, 4, removeEverywhere(r, "a"))
	want := []ringmeta.Chain{
		{Members: []string{"b", "c"}, Version: 2},
		{Members: []string{"a"}, Version: 1},
		{Members: []string{"b"}, Version: 6}, // tail gone: learner cleared too
		{Members: []string{"b", "c"}, Version: 3},
		{Members: []string{"a"}, Version: 8}, // last member stays, learner has no source
		{Members: []string{"b"}, Version: 1},
	}
	require.Equal(t, want, r.Chains)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
