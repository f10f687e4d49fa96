package core

import (
	"encoding/json"
	"testing"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

func TestPromote(t *testing.T) {
	tests := []struct {
		name  string
		in    Partition
		id    string
		ready uint64
		want  Partition
		ok    bool
	}{
		{name: "learner becomes the unsynced tail", in: pt(4, "l", m("a", "b")), id: "l", ready: 4, ok: true, want: Partition{
			Chain: ringmeta.Chain{Members: m("a", "b", "l"), Version: 5}, Unsynced: []Mark{{ID: "l", Version: 5}}}},
		{name: "stale version", in: pt(4, "l", m("a", "b")), id: "l", ready: 3, want: pt(4, "l", m("a", "b"))},
		{name: "not the learner", in: pt(4, "l", m("a", "b")), id: "x", ready: 4, want: pt(4, "l", m("a", "b"))},
		{name: "frozen", in: pt(4, "l", m("a", "k"), "k"), id: "l", ready: 4, want: pt(4, "l", m("a", "k"), "k")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Promote(tt.in, tt.id, tt.ready)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
			if ok {
				require.NoError(t, CheckStep(tt.in, got))
			}
		})
	}
}

func TestClear(t *testing.T) {
	marked := Partition{Chain: ringmeta.Chain{Members: m("a", "l"), Version: 6}, Unsynced: []Mark{{ID: "l", Version: 5}}}
	tests := []struct {
		name string
		in   Partition
		id   string
		v    uint64
		ok   bool
	}{
		{name: "report at the mark's version", in: marked, id: "l", v: 5, ok: true},
		{name: "report at a later version", in: marked, id: "l", v: 6, ok: true},
		{name: "report older than the mark", in: marked, id: "l", v: 4},
		{name: "report ahead of the chain", in: marked, id: "l", v: 7},
		{name: "no mark", in: marked, id: "a", v: 6},
		{name: "not a member", in: pt(6, "l", m("a")), id: "l", v: 6},
		{name: "predecessor unsynced", in: pt(6, "", m("a", "k", "l"), "k", "l"), id: "l", v: 6},
		{name: "predecessor synced", in: pt(6, "", m("a", "k", "l"), "k", "l"), id: "k", v: 6, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Clear(tt.in, tt.id, tt.v)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.in.Chain, got.Chain, "the chain does not change")
			_, still := got.Marked(tt.id)
			require.Equal(t, tt.ok, !still && ok)
			if !ok {
				require.Equal(t, tt.in, got)
			}
		})
	}
}

func TestPlannedSteps(t *testing.T) {
	_, err := AddLearner(pt(3, "", m("a", "l"), "l"), "x")
	require.ErrorIs(t, err, ErrFrozen)
	_, err = AddLearner(pt(3, "y", m("a")), "x")
	require.ErrorIs(t, err, ErrLearnerBusy)
	_, err = AddLearner(pt(3, "", m("a")), "a")
	require.ErrorIs(t, err, ErrMember)
	_, err = Shrink(pt(3, "", m("a", "l"), "l"), m("a"))
	require.ErrorIs(t, err, ErrFrozen)
	_, err = Shrink(pt(3, "x", m("a", "b")), m("a"))
	require.ErrorIs(t, err, ErrLearnerBusy)
	_, err = Shrink(pt(3, "", m("a", "b")), m("a", "b"))
	require.ErrorIs(t, err, ErrLastMember)
	_, err = Shrink(pt(3, "", m("a", "b")), m("c"))
	require.ErrorIs(t, err, ErrNotMember)
	got, err := Shrink(pt(3, "", m("a", "b", "c")), m("a"))
	require.NoError(t, err)
	require.Equal(t, pt(4, "", m("b", "c")), got)
}

// TestMoveR1 walks an R=1 move [A] -> [A,B] -> [B]: A leaves only after B
// reported synced, and A failing in between never leaves B alone.
func TestMoveR1(t *testing.T) {
	p := pt(1, "", m("a"))
	p, err := AddLearner(p, "b")
	require.NoError(t, err)
	p, ok := Promote(p, "b", 2)
	require.True(t, ok)
	require.Equal(t, Partition{Chain: ringmeta.Chain{Members: m("a", "b"), Version: 3}, Unsynced: []Mark{{ID: "b", Version: 3}}}, p)
	_, err = Shrink(p, m("a"))
	require.ErrorIs(t, err, ErrFrozen, "A may not leave before B reported")
	require.Equal(t, p, Remove(p, goneSet("a")), "A fails: the partition waits for it")

	p, ok = Clear(p, "b", 3)
	require.True(t, ok)
	p, err = Shrink(p, m("a"))
	require.NoError(t, err)
	require.Equal(t, pt(4, "", m("b")), p)
}

// TestMarksSurviveReload: a new ECS leader reads the marks from etcd (as
// JSON with the controller state) and takes the same decisions.
func TestMarksSurviveReload(t *testing.T) {
	p, ok := Promote(pt(4, "l", m("a", "b")), "l", 4)
	require.True(t, ok)
	b, err := json.Marshal(p.Unsynced)
	require.NoError(t, err)
	var reloaded Partition
	reloaded.Chain = p.Chain
	require.NoError(t, json.Unmarshal(b, &reloaded.Unsynced))
	require.Equal(t, p, reloaded)
	for _, gone := range [][]string{{"a", "b"}, {"a"}, {"b"}} {
		got := Remove(reloaded, goneSet(gone...))
		require.NoError(t, CheckStep(reloaded, got), "gone %v", gone)
		require.True(t, got.Synced(got.Chain.Head()), "gone %v: %+v", gone, got)
	}
}
