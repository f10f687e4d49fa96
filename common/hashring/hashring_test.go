package hashring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// makeServers returns n servers "s0000".."s<n-1>", zones assigned round-robin.
func makeServers(n int, zones ...string) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i].ID = fmt.Sprintf("s%04d", i)
		if len(zones) > 0 {
			out[i].Zone = zones[i%len(zones)]
		}
	}
	return out
}

// requireValid checks the invariants every layout must keep: each chain has
// min(r, n) distinct members, all of them current servers. It calls require
// only on failure: per-element assertions would dominate the runtime of the
// 16384-partition cases under -race.
func requireValid(t testing.TB, chains [][]string, servers []Server, r int) {
	t.Helper()
	known := make(map[string]bool, len(servers))
	for _, s := range servers {
		known[s.ID] = true
	}
	want := min(r, len(servers))
	for p, chain := range chains {
		if len(chain) != want {
			require.Failf(t, "wrong chain length", "partition %d: %v, want %d members", p, chain, want)
		}
		for i, id := range chain {
			if !known[id] || slices.Contains(chain[:i], id) {
				require.Failf(t, "bad member", "partition %d: %v: %q unknown or repeated", p, chain, id)
			}
		}
	}
}

// requireChainOrder checks chain semantics across a rebalance: the members
// that stay keep their relative order and come before every new member.
func requireChainOrder(t testing.TB, before, after [][]string) {
	t.Helper()
	for p := range after {
		kept := make([]string, 0, len(after[p]))
		for _, id := range before[p] {
			if slices.Contains(after[p], id) && !slices.Contains(kept, id) {
				kept = append(kept, id)
			}
		}
		if !slices.Equal(kept, after[p][:len(kept)]) {
			require.Failf(t, "chain order changed", "partition %d: %v -> %v", p, before[p], after[p])
		}
	}
}

// loadRatio returns the most loaded server's share over the mean, the mean
// taken over every server (a server holding nothing counts as 0).
func loadRatio(chains [][]string, n int) (ratio, mean float64) {
	total, most := 0, 0
	for _, l := range Load(chains) {
		total += l
		most = max(most, l)
	}
	mean = float64(total) / float64(n)
	return float64(most) / mean, mean
}

func movedReplicas(before, after [][]string) int {
	n := 0
	for _, m := range Diff(before, after) {
		n += len(m.Added)
	}
	return n
}

func mostLoaded(chains [][]string) string {
	best, id := -1, ""
	for s, l := range Load(chains) {
		if l > best || (l == best && s < id) {
			best, id = l, s
		}
	}
	return id
}

func without(servers []Server, id string) []Server {
	return slices.DeleteFunc(slices.Clone(servers), func(s Server) bool { return s.ID == id })
}

func TestPlacement(t *testing.T) {
	cases := []struct{ n, p, r int }{
		{3, 1024, 3}, {5, 1024, 3}, {10, 1024, 3}, {50, 1024, 3}, {100, 1024, 3}, {1000, 16384, 3},
		{10, 1024, 1}, {100, 1024, 1}, {1000, 16384, 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("N=%d/P=%d/R=%d", tc.n, tc.p, tc.r), func(t *testing.T) {
			t.Parallel()
			servers := makeServers(tc.n)
			initial, err := Initial(servers, tc.p, tc.r)
			require.NoError(t, err)
			requireValid(t, initial, servers, tc.r)
			ratio, mean := loadRatio(initial, tc.n)
			t.Logf("initial: max/mean %.3f (mean %.2f)", ratio, mean)
			require.LessOrEqual(t, ratio, 1.10)

			same, err := Rebalance(initial, servers, tc.r)
			require.NoError(t, err)
			require.Empty(t, Diff(initial, same), "rebalancing a balanced layout must change nothing")
			require.Equal(t, initial, same)

			added := append(slices.Clone(servers), Server{ID: "new"})
			checkChange(t, "add", initial, added, tc.p, tc.r, float64(tc.p*tc.r)/float64(len(added)))

			if tc.n > 1 {
				removed := without(servers, mostLoaded(initial))
				checkChange(t, "remove", initial, removed, tc.p, tc.r, float64(tc.p*tc.r)/float64(tc.n))
			}
		})
	}
}

// checkChange rebalances before onto servers and checks validity, balance,
// chain order and that at most 1.15x the ideal number of replicas moved.
func checkChange(t *testing.T, what string, before [][]string, servers []Server, p, r int, ideal float64) {
	t.Helper()
	after, err := Rebalance(before, servers, r)
	require.NoError(t, err)
	requireValid(t, after, servers, r)
	requireChainOrder(t, before, after)
	ratio, _ := loadRatio(after, len(servers))
	moved := movedReplicas(before, after)
	t.Logf("%s: max/mean %.3f, moved %d, ideal %.1f, moved/ideal %.3f", what, ratio, moved, ideal, float64(moved)/ideal)
	require.LessOrEqual(t, ratio, 1.10)
	require.LessOrEqual(t, float64(moved), 1.15*ideal)

	again, err := Rebalance(after, servers, r)
	require.NoError(t, err)
	require.Empty(t, Diff(after, again), "second rebalance must be a no-op")
}

// TestChurn adds and removes random servers one at a time: every step must
// stay within the move and load bounds, not just the first one after Initial.
func TestChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	servers := makeServers(40)
	chains, err := Initial(servers, 1024, 3)
	require.NoError(t, err)
	worst, next := 0.0, len(servers)
	for step := range 40 {
		n := len(servers)
		var after []Server
		ideal := float64(1024*3) / float64(n)
		if rng.IntN(2) == 0 || n < 20 {
			after = append(slices.Clone(servers), Server{ID: fmt.Sprintf("c%04d", next)})
			next++
			ideal = float64(1024*3) / float64(n+1)
		} else {
			after = without(servers, servers[rng.IntN(n)].ID)
		}
		got, err := Rebalance(chains, after, 3)
		require.NoError(t, err)
		requireValid(t, got, after, 3)
		moved := float64(movedReplicas(chains, got))
		ratio, _ := loadRatio(got, len(after))
		require.LessOrEqual(t, ratio, 1.10, "step %d", step)
		require.LessOrEqual(t, moved, 1.15*ideal, "step %d", step)
		worst = max(worst, moved/ideal)
		chains, servers = got, after
	}
	t.Logf("worst moved/ideal over 40 steps: %.3f", worst)
}

func TestRebalanceRepairsShortChains(t *testing.T) {
	cases := []struct {
		name      string
		n, p, r   int
		dropEvery int  // damage every dropEvery-th chain
		dropHead  bool // drop the head instead of the tail
	}{
		{name: "tails", n: 10, p: 1024, r: 3, dropEvery: 3},
		{name: "heads", n: 50, p: 1024, r: 3, dropEvery: 5, dropHead: true},
		{name: "r1 emptied", n: 10, p: 256, r: 1, dropEvery: 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers := makeServers(tc.n)
			initial, err := Initial(servers, tc.p, tc.r)
			require.NoError(t, err)
			damaged := make([][]string, len(initial))
			dropped := 0
			for p, chain := range initial {
				damaged[p] = slices.Clone(chain)
				if p%tc.dropEvery == 0 {
					i := len(chain) - 1
					if tc.dropHead {
						i = 0
					}
					damaged[p] = slices.Delete(damaged[p], i, i+1)
					dropped++
				}
			}
			repaired, err := Rebalance(damaged, servers, tc.r)
			require.NoError(t, err)
			requireValid(t, repaired, servers, tc.r)
			requireChainOrder(t, damaged, repaired)
			moved := movedReplicas(damaged, repaired)
			t.Logf("dropped %d, moved %d", dropped, moved)
			require.GreaterOrEqual(t, moved, dropped)
			require.LessOrEqual(t, float64(moved), 1.15*float64(dropped))
			ratio, _ := loadRatio(repaired, tc.n)
			require.LessOrEqual(t, ratio, 1.10)
		})
	}
}

func TestRebalanceCleansInput(t *testing.T) {
	servers := makeServers(4)
	current := [][]string{
		{"s0000", "gone", "s0001", "s0002"},  // unknown member dropped, order kept
		{"s0003", "s0003", "s0000"},          // repeat kept once, then refilled
		{"s0001", "s0002", "s0003", "s0000"}, // too long: head-most kept
		{},                                   // empty: filled
	}
	got, err := Rebalance(current, servers, 3)
	require.NoError(t, err)
	requireValid(t, got, servers, 3)
	require.Equal(t, []string{"s0000", "s0001", "s0002"}, got[0])
	require.Equal(t, []string{"s0003", "s0000"}, got[1][:2])
	require.Equal(t, []string{"s0001", "s0002", "s0003"}, got[2])
}

// TestInitialRing pins Initial's consistent-hashing walk with one token per
// server at hand-picked positions (quarters of the ring for P=4).
func TestInitialRing(t *testing.T) {
	quarter := uint64(1) << 62
	pos := map[string]uint64{"a#0": quarter, "b#0": 2 * quarter, "c#0": 3 * quarter}
	hash := func(b []byte) uint64 { return pos[string(b)] }
	servers := []Server{{ID: "c"}, {ID: "a"}, {ID: "b"}} // input order must not matter
	cases := []struct {
		name string
		p, r int
		want [][]string
	}{
		// partition 0 starts at 0, before a's token; partition 1 starts on it.
		{name: "r1", p: 4, r: 1, want: [][]string{{"a"}, {"a"}, {"b"}, {"c"}}},
		{name: "r2", p: 4, r: 2, want: [][]string{{"a", "b"}, {"a", "b"}, {"b", "c"}, {"c", "a"}}},
		{name: "r3 wraps", p: 4, r: 3, want: [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}}},
		{name: "r5 capped at n", p: 2, r: 5, want: [][]string{{"a", "b", "c"}, {"b", "c", "a"}}},
		// P=8: cap 3 per server. Partition 7 wraps to a, which is full
		// (partitions 0-2), so it goes to the next server, b.
		{name: "bounded load", p: 8, r: 1, want: [][]string{{"a"}, {"a"}, {"a"}, {"b"}, {"b"}, {"c"}, {"c"}, {"b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Initial(servers, tc.p, tc.r, WithTokens(1), WithHash(hash))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDeterministic(t *testing.T) {
	servers := makeServers(40, "x", "y", "z")
	first, err := Initial(servers, 1024, 3)
	require.NoError(t, err)
	shuffled := slices.Clone(servers)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	second, err := Initial(shuffled, 1024, 3)
	require.NoError(t, err)
	require.Equal(t, first, second)

	grown := append(shuffled, Server{ID: "new", Zone: "x"})
	a, err := Rebalance(first, grown, 3)
	require.NoError(t, err)
	b, err := Rebalance(first, append(servers, Server{ID: "new", Zone: "x"}), 3)
	require.NoError(t, err)
	require.Equal(t, a, b)

	other, err := Initial(servers, 1024, 3, WithHash(func(b []byte) uint64 { return uint64(len(b)) * 0x9e3779b97f4a7c15 }))
	require.NoError(t, err)
	requireValid(t, other, servers, 3)
	require.NotEqual(t, first, other, "the injected hash must be used")
}

func TestValidation(t *testing.T) {
	ok := makeServers(3)
	cases := []struct {
		name    string
		servers []Server
		p, r    int
		want    error
	}{
		{name: "no servers", servers: nil, p: 16, r: 3, want: ErrNoServers},
		{name: "zero partitions", servers: ok, p: 0, r: 3, want: ErrBadPartitions},
		{name: "not a power of two", servers: ok, p: 24, r: 3, want: ErrBadPartitions},
		{name: "too many partitions", servers: ok, p: 1 << 16, r: 3, want: ErrBadPartitions},
		{name: "zero replicas", servers: ok, p: 16, r: 0, want: ErrBadReplicas},
		{name: "duplicate id", servers: []Server{{ID: "a"}, {ID: "b"}, {ID: "a"}}, p: 16, r: 3, want: ErrDuplicateServer},
		{name: "empty id", servers: []Server{{ID: "a"}, {ID: ""}}, p: 16, r: 3, want: ErrEmptyServerID},
		{name: "one partition", servers: ok, p: 1, r: 3},
		{name: "max partitions", servers: ok, p: MaxPartitions, r: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chains, err := Initial(tc.servers, tc.p, tc.r)
			require.ErrorIs(t, err, tc.want)
			_, rerr := Rebalance(make([][]string, tc.p), tc.servers, tc.r)
			require.ErrorIs(t, rerr, tc.want)
			if tc.want == nil {
				requireValid(t, chains, tc.servers, tc.r)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name          string
		before, after [][]string
		want          []Move
	}{
		{name: "equal", before: [][]string{{"a", "b"}}, after: [][]string{{"a", "b"}}},
		{name: "reorder is not a move", before: [][]string{{"a", "b"}}, after: [][]string{{"b", "a"}}},
		{
			name:   "replace",
			before: [][]string{{"a", "b"}, {"b", "c"}},
			after:  [][]string{{"a", "b"}, {"c", "d"}},
			want:   []Move{{Partition: 1, Added: []string{"d"}, Removed: []string{"b"}}},
		},
		{
			name:   "grown layout",
			before: [][]string{{"a"}},
			after:  [][]string{{"a"}, {"b"}},
			want:   []Move{{Partition: 1, Added: []string{"b"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Diff(tc.before, tc.after))
		})
	}
}

func TestLoad(t *testing.T) {
	require.Equal(t, map[string]int{"a": 2, "b": 1, "c": 1}, Load([][]string{{"a", "b"}, {"c", "a"}}))
	require.Empty(t, Load(nil))
}

func BenchmarkInitial(b *testing.B) {
	for _, n := range []int{100, 1000} {
		servers := makeServers(n)
		p := 1024
		if n >= 1000 {
			p = 16384
		}
		b.Run(fmt.Sprintf("N=%d/P=%d", n, p), func(b *testing.B) {
			for b.Loop() {
				if _, err := Initial(servers, p, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRebalance(b *testing.B) {
	servers := makeServers(1000)
	initial, err := Initial(servers, 16384, 3)
	if err != nil {
		b.Fatal(err)
	}
	cases := map[string][]Server{
		"add":    append(slices.Clone(servers), Server{ID: "new"}),
		"remove": servers[1:],
		"same":   servers,
	}
	for _, name := range []string{"add", "remove", "same"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Rebalance(initial, cases[name], 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
