package ecs

import (
	"fmt"
	"testing"

	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

func zoned(zone string, n int) []hashring.Server {
	out := make([]hashring.Server, n)
	for i := range out {
		out[i] = hashring.Server{ID: fmt.Sprintf("%s%d", zone, i+1), Zone: zone}
	}
	return out
}

// TestSimulateZonesLateJoin: servers of a third zone join a cluster laid
// out over two, at once or one at a time with moves in flight, and the
// planner applies Rebalance's target max-moves learners at a time. Whether
// it keeps its target or recomputes it every epoch (as a new leader would,
// from chains half way to the old one), the chains end spanning the three
// zones, and the copies made stay near the ones a single Rebalance to the
// final servers needs: re-planning does not undo moves it made.
func TestSimulateZonesLateJoin(t *testing.T) {
	ab := append(zoned("a", 3), zoned("b", 3)...)
	rr := []hashring.Server{}
	for i := range 3 {
		for _, z := range []string{"a", "b", "c"} {
			rr = append(rr, hashring.Server{ID: fmt.Sprintf("%s%d", z, i+1), Zone: z})
		}
	}
	tests := []struct {
		name   string
		start  []hashring.Server // the first layout's servers
		cfg    simConfig
		excess float64 // copies over a single Rebalance's, at most (0: simulate checks its own)
	}{
		{name: "zone joins at once", start: ab, cfg: simConfig{eligible: append(ab, zoned("c", 3)...)}},
		{name: "zone joins at once, re-planned", start: ab,
			cfg: simConfig{eligible: append(ab, zoned("c", 3)...), replan: true}, excess: 1},
		// Re-planned after each join, from runs of neighbours (the ECS's
		// first layout) 282 copies against 266.
		{name: "zone joins one by one mid-move, re-planned", start: ab,
			cfg: simConfig{eligible: ab, joins: zoned("c", 3), joinEvery: 4, replan: true}, excess: 1.1},
		{name: "zones in turn 3 to 9 mid-move", start: rr[:3],
			cfg: simConfig{eligible: rr[:3], joins: rr[3:], joinEvery: 3}, excess: 1.15},
		{name: "zones in turn 3 to 9 mid-move, re-planned", start: rr[:3],
			cfg: simConfig{eligible: rr[:3], joins: rr[3:], joinEvery: 3, replan: true}, excess: 1.15},
	}
	for _, tt := range tests {
		for _, scattered := range []bool{false, true} {
			name := tt.name
			if scattered {
				name += ", scattered"
			}
			t.Run(name, func(t *testing.T) {
				const p, r = 256, 3
				chains := initialLayout(t, tt.start, p, r)
				if scattered {
					chains = scatteredLayout(t, tt.start, p, r)
				}
				tt.cfg.r, tt.cfg.maxMoves = r, 8
				all := append(tt.cfg.eligible, tt.cfg.joins...)
				direct, err := hashring.Rebalance(members(chains), all, r)
				require.NoError(t, err)
				once := 0
				for _, m := range hashring.Diff(members(chains), direct) {
					once += len(m.Added)
				}
				res := simulateWith(t, chains, tt.cfg)
				t.Logf("%d epochs, %d copies; a single Rebalance to the final servers: %d", res.epochs, res.copies, once)
				zoneOf := map[string]string{}
				for _, s := range all {
					zoneOf[s.ID] = s.Zone
				}
				for p, ch := range res.chains {
					require.Empty(t, ch.Learner, "partition %d", p)
					zones := map[string]bool{}
					for _, m := range ch.Members {
						zones[zoneOf[m]] = true
					}
					require.Len(t, zones, 3, "partition %d: %v", p, ch.Members)
				}
				again, err := hashring.Rebalance(members(res.chains), all, r)
				require.NoError(t, err)
				require.Empty(t, hashring.Diff(members(res.chains), again), "the final chains are Rebalance's fixed point")
				if tt.excess > 0 {
					require.LessOrEqual(t, float64(res.copies), tt.excess*float64(once))
				}
			})
		}
	}
}

func members(chains []ringmeta.Chain) [][]string {
	out := make([][]string, len(chains))
	for p, ch := range chains {
		out[p] = ch.Members
	}
	return out
}
