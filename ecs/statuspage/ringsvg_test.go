package statuspage

import (
	"strings"
	"testing"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRingViewMarksAndMergesPartitions(t *testing.T) {
	r := &ringmeta.Ring{Epoch: 7, Partitions: 8, Replicas: 3, Servers: []ringmeta.Server{
		{ID: "s1", State: ringmeta.StateActive}, {ID: "s2", State: ringmeta.StateActive}, {ID: "s3", State: ringmeta.StateDown},
	}}
	full := []string{"s1", "s2", "s3"}
	r.Chains = []ringmeta.Chain{
		{Members: full}, {Members: full}, // one arc
		{Members: []string{"s1", "s2"}},       // under-replicated: its own arc
		{Members: []string{"s2", "s1", "s3"}}, // other head
		{Members: []string{"s2", "s1", "s3"}, Learner: "s3"},
		{}, // no live copy
		{Members: []string{"s2", "s1", "s3"}}, {Members: []string{"s2", "s1", "s3"}},
	}
	v := newRingView(r)
	type arc struct {
		from, to       int
		head           string
		under, unavail bool
		learning       bool
	}
	var got []arc
	for _, a := range v.Arcs {
		got = append(got, arc{a.From, a.To, a.Head, a.Under, a.Unavailable, a.Learner != ""})
		assert.True(t, strings.HasPrefix(a.D, "M ") && strings.HasSuffix(a.D, " Z"), "closed path %q", a.D)
	}
	assert.Equal(t, []arc{
		{0, 1, "s1", false, false, false},
		{2, 2, "s1", true, false, false},
		{3, 3, "s2", false, false, false},
		{4, 4, "s2", false, false, true},
		{5, 5, "", true, true, false},
		{6, 7, "s2", false, false, false},
	}, got)
	assert.Equal(t, "#222", v.Arcs[4].Fill, "no live copy is drawn black")
	assert.NotEqual(t, v.Arcs[0].Fill, v.Arcs[2+1].Fill, "heads have different colours")
	require.Len(t, v.Legend, 3)
	assert.Equal(t, legendEntry{ID: "s2", Fill: palette[1], State: "active", Heads: 4}, v.Legend[1])
}

func TestSectorFullCircleAndLargeArc(t *testing.T) {
	// One partition (or one head for all) is a full annulus: two half arcs.
	assert.Equal(t, 4, strings.Count(sector(0, 1, 1, 10, 20), " A "))
	assert.Equal(t, 4, strings.Count(sector(0, 16, 16, 10, 20), " A "))
	// More than half the circle sets SVG's large-arc flag.
	assert.Contains(t, sector(0, 12, 16, 10, 20), "0 1 1")
	assert.Contains(t, sector(0, 4, 16, 10, 20), "0 0 1")
}
