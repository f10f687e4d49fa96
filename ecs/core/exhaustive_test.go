package core

import (
	"slices"
	"testing"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

// The tests below run every rule on every valid partition of up to four
// members over five servers (with or without a learner, any members marked)
// and, for Remove, every set of gone servers.

var universe = []string{"a", "b", "c", "d", "e"}

// sequences returns every ordered choice of 1..max distinct servers.
func sequences(maxLen int) [][]string {
	var out [][]string
	var walk func(cur []string)
	walk = func(cur []string) {
		if len(cur) > 0 {
			out = append(out, slices.Clone(cur))
		}
		if len(cur) == maxLen {
			return
		}
		for _, s := range universe {
			if !slices.Contains(cur, s) {
				walk(append(cur, s))
			}
		}
	}
	walk(nil)
	return out
}

// validPartitions lists every partition that passes Check.
func validPartitions() []Partition {
	const v = 5
	var out []Partition
	for _, members := range sequences(4) {
		learners := []string{""}
		for _, s := range universe {
			if !slices.Contains(members, s) {
				learners = append(learners, s)
			}
		}
		for _, l := range learners {
			for bits := 0; bits < 1<<len(members); bits++ {
				p := Partition{Chain: ringmeta.Chain{Members: members, Version: v, Learner: l}}
				for i, id := range members {
					if bits&(1<<i) != 0 {
						p.Unsynced = append(p.Unsynced, Mark{ID: id, Version: v - uint64(i%2)})
					}
				}
				if Check(p) == nil {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func TestRemoveExhaustive(t *testing.T) {
	n := 0
	for _, in := range validPartitions() {
		for bits := 0; bits < 1<<len(universe); bits++ {
			gone := map[string]bool{}
			for i, s := range universe {
				if bits&(1<<i) != 0 {
					gone[s] = true
				}
			}
			got := Remove(in, gone)
			n++
			require.NoError(t, CheckStep(in, got), "%+v gone %v -> %+v", in, gone, got)
			checkRemoved(t, in, gone, got)
			require.Equal(t, got, Remove(got, gone), "%+v gone %v: not idempotent", in, gone)
		}
	}
	t.Logf("%d partitions x gone sets checked", n)
}

// checkRemoved asserts what Remove promises beyond the invariants.
func checkRemoved(t *testing.T, in Partition, gone map[string]bool, got Partition) {
	t.Helper()
	liveSynced := slices.ContainsFunc(in.Chain.Members, func(m string) bool { return in.Synced(m) && !gone[m] })
	for _, m := range in.Chain.Members {
		if in.Synced(m) && !gone[m] {
			require.GreaterOrEqual(t, got.Chain.Index(m), 0, "%+v gone %v: live synced %s dropped", in, gone, m)
		}
	}
	kept := 0
	for i, m := range got.Chain.Members {
		if gone[m] {
			kept++
			require.False(t, liveSynced, "%+v gone %v: gone %s kept beside a live synced member", in, gone, m)
			require.True(t, in.Synced(m), "%+v gone %v: gone unsynced %s kept", in, gone, m)
		}
		if !got.Synced(m) {
			was := in.Chain.Index(m)
			require.Positive(t, i, "%+v: unsynced head", got)
			require.Equal(t, in.Chain.Members[was-1], got.Chain.Members[i-1], "%+v gone %v: %s has a new predecessor", in, gone, m)
		}
	}
	require.LessOrEqual(t, kept, 1, "%+v gone %v: more than one gone member kept", in, gone)
	if l := got.Chain.Learner; l != "" {
		require.False(t, gone[l] || gone[got.Chain.Tail()], "%+v gone %v: learner %s without a source", in, gone, l)
		demoted := in.Chain.Index(l) >= 0 && !in.Synced(l)
		require.True(t, l == in.Chain.Learner || demoted, "%+v gone %v: learner %s from nowhere", in, gone, l)
	}
	if !slices.ContainsFunc(append(slices.Clone(in.Chain.Members), in.Chain.Learner), func(m string) bool { return gone[m] }) {
		require.Equal(t, in, got, "nothing gone, nothing changes")
	}
}

func TestStepsExhaustive(t *testing.T) {
	for _, in := range validPartitions() {
		if out, ok := Promote(in, in.Chain.Learner, in.Chain.Version); ok {
			require.NoError(t, CheckStep(in, out), "promote %+v", in)
			require.False(t, out.Synced(in.Chain.Learner))
		} else {
			require.True(t, in.Chain.Learner == "" || in.Frozen(), "promote refused %+v", in)
		}
		for _, id := range universe {
			if out, err := AddLearner(in, id); err == nil {
				require.NoError(t, CheckStep(in, out), "learner %s on %+v", id, in)
			}
		}
		for bits := 1; bits < 1<<len(in.Chain.Members); bits++ {
			var leavers []string
			for i, id := range in.Chain.Members {
				if bits&(1<<i) != 0 {
					leavers = append(leavers, id)
				}
			}
			if out, err := Shrink(in, leavers); err == nil {
				require.NoError(t, CheckStep(in, out), "shrink %v of %+v", leavers, in)
			}
		}
		for _, mk := range in.Unsynced {
			for _, v := range []uint64{mk.Version - 1, mk.Version, in.Chain.Version, in.Chain.Version + 1} {
				if out, ok := Clear(in, mk.ID, v); ok {
					require.NoError(t, Check(out), "clear %+v at %d on %+v", mk, v, in)
					require.True(t, v >= mk.Version && v <= in.Chain.Version)
				}
			}
		}
	}
}

// TestMarkedOnlyFailsOver checks what a marked member relies on to know
// when it may stop re-reporting its sync (kvserver/chainsm onlyRemoved):
// while a partition holds a mark (one at most: Promote adds one only to a
// partition without), the only step that changes its chain is a failover,
// which keeps the marked member, if at all, in a chain of the same members
// less some, in the same order, without a learner.
func TestMarkedOnlyFailsOver(t *testing.T) {
	for _, in := range validPartitions() {
		if len(in.Unsynced) != 1 || in.Chain.Learner != "" {
			continue
		}
		m := in.Unsynced[0].ID
		_, err := AddLearner(in, "e")
		require.ErrorIs(t, err, ErrFrozen, "learner on %+v", in)
		_, err = Shrink(in, in.Chain.Members[:1])
		require.ErrorIs(t, err, ErrFrozen, "shrink %+v", in)
		_, err = Reorder(in, in.Chain.Members)
		require.ErrorIs(t, err, ErrFrozen, "reorder %+v", in)
		for bits := 0; bits < 1<<len(universe); bits++ {
			gone := map[string]bool{}
			for i, s := range universe {
				if bits&(1<<i) != 0 {
					gone[s] = true
				}
			}
			got := Remove(in, gone)
			if got.Chain.Index(m) < 0 {
				continue
			}
			require.Empty(t, got.Chain.Learner, "%+v gone %v -> %+v", in, gone, got)
			i := 0
			for _, id := range in.Chain.Members {
				if i < len(got.Chain.Members) && got.Chain.Members[i] == id {
					i++
				}
			}
			require.Equal(t, len(got.Chain.Members), i, "%+v gone %v -> %+v: not a subsequence", in, gone, got)
		}
	}
}
