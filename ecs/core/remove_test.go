package core

import (
	"testing"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

// pt builds a partition: members in chain order, a learner ("" for none),
// and the members marked unsynced (at the chain's version).
func pt(v uint64, learner string, members []string, unsynced ...string) Partition {
	p := Partition{Chain: ringmeta.Chain{Members: members, Version: v, Learner: learner}}
	for _, id := range unsynced {
		p.Unsynced = append(p.Unsynced, Mark{ID: id, Version: v})
	}
	return p
}

func m(ids ...string) []string { return ids }

func goneSet(ids ...string) map[string]bool {
	g := map[string]bool{}
	for _, id := range ids {
		g[id] = true
	}
	return g
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name string
		in   Partition
		gone []string
		want Partition
	}{
		{name: "nothing gone: unchanged", in: pt(3, "x", m("a", "b"), "b"), gone: m("y"), want: pt(3, "x", m("a", "b"), "b")},
		{name: "synced middle leaves", in: pt(3, "", m("a", "b", "c")), gone: m("b"), want: pt(4, "", m("a", "c"))},
		{name: "head leaves, learner goes with the change", in: pt(3, "x", m("a", "b", "c")), gone: m("a"), want: pt(4, "", m("b", "c"))},
		{name: "learner gone", in: pt(3, "x", m("a", "b")), gone: m("x"), want: pt(4, "", m("a", "b"))},
		{name: "R=3 shrunk to one synced member", in: pt(3, "", m("a", "b", "c")), gone: m("a", "b"), want: pt(4, "", m("c"))},
		{name: "sole member stays; its learner has no source", in: pt(3, "x", m("a")), gone: m("a"), want: pt(4, "", m("a"))},
		{name: "sole member stays", in: pt(3, "", m("a")), gone: m("a"), want: pt(3, "", m("a"))},
		{name: "every synced member gone: the one nearest the tail stays", in: pt(3, "", m("a", "b", "c")), gone: m("a", "b", "c"), want: pt(4, "", m("c"))},
		// Bug 1: [A,B] with learner L; L promoted; A and B lose etcd.
		{name: "bug 1: promoted L never alone", in: pt(5, "", m("a", "b", "l"), "l"), gone: m("a", "b"), want: Partition{
			Chain: ringmeta.Chain{Members: m("b", "l"), Version: 6}, Unsynced: []Mark{{ID: "l", Version: 5}}}},
		{name: "bug 1, one at a time: the last synced member stays", in: pt(6, "", m("b", "l"), "l"), gone: m("b"), want: pt(6, "", m("b", "l"), "l")},
		// Bug 3: an unsynced tail never becomes head or sole member.
		{name: "bug 3: unsynced tail behind a gone head stays behind it", in: pt(4, "", m("a", "l"), "l"), gone: m("a"), want: pt(4, "", m("a", "l"), "l")},
		{name: "bug 3: predecessor gone: the unsynced tail is the learner again", in: pt(4, "", m("a", "b", "l"), "l"), gone: m("b"), want: pt(5, "l", m("a"))},
		{name: "unsynced tail gone itself", in: pt(4, "", m("a", "b", "l"), "l"), gone: m("l"), want: pt(5, "", m("a", "b"))},
		{name: "head gone, predecessor of the unsynced tail stays", in: pt(4, "", m("a", "b", "l"), "l"), gone: m("a"), want: Partition{
			Chain: ringmeta.Chain{Members: m("b", "l"), Version: 5}, Unsynced: []Mark{{ID: "l", Version: 4}}}},
		{name: "demoted under a gone kept tail: no source, it leaves", in: pt(4, "", m("a", "b", "k", "l"), "k", "l"), gone: m("a", "b", "k"), want: pt(5, "", m("b"))},
		{name: "demoted takes the slot the change emptied", in: pt(4, "x", m("a", "b", "l"), "l"), gone: m("b"), want: pt(5, "l", m("a"))},
		{name: "second demoted member leaves", in: pt(4, "", m("a", "b", "k", "l"), "k", "l"), gone: m("b"), want: pt(5, "k", m("a"))},
		{name: "unsynced behind unsynced keeps its predecessor", in: pt(4, "", m("a", "b", "k", "l"), "k", "l"), gone: m("a"), want: Partition{
			Chain: ringmeta.Chain{Members: m("b", "k", "l"), Version: 5}, Unsynced: []Mark{{ID: "k", Version: 4}, {ID: "l", Version: 4}}}},
		{name: "no synced member at all (no rule makes one): members stay", in: pt(4, "", m("k", "l"), "k", "l"), gone: m("k"), want: pt(4, "", m("k", "l"), "k", "l")},
		// R=1 move [A] -> [A,B]: A fails before B synced.
		{name: "R=1 move: source fails before the target synced", in: pt(3, "", m("a", "b"), "b"), gone: m("a"), want: pt(3, "", m("a", "b"), "b")},
		{name: "R=1 move: target fails", in: pt(3, "", m("a", "b"), "b"), gone: m("b"), want: pt(4, "", m("a"))},
		{name: "R=1 move: both fail", in: pt(3, "", m("a", "b"), "b"), gone: m("a", "b"), want: pt(4, "", m("a"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.clone()
			got := Remove(tt.in, goneSet(tt.gone...))
			require.Equal(t, tt.want, got)
			require.Equal(t, before, tt.in, "the argument is not modified")
			if Check(tt.in) == nil {
				require.NoError(t, CheckStep(tt.in, got))
			}
			require.Equal(t, got, Remove(got, goneSet(tt.gone...)), "a second pass with the same servers gone changes nothing")
		})
	}
}
