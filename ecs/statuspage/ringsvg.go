package statuspage

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// ringView is the status page's picture of the ring: partitions around a
// circle, coloured by head server, with under-replicated, unavailable and
// learning partitions marked. Adjacent partitions in the same state share
// one arc, so a ring of 16384 partitions stays a small SVG.
type ringView struct {
	Size       int
	Partitions int
	Arcs       []ringArc
	Legend     []legendEntry
}

// ringArc is a run of adjacent partitions [From, To] in the same state.
type ringArc struct {
	From, To    int
	Head        string
	Fill        string
	D           string // the SVG path of the sector
	Under       bool   // fewer than R members
	Unavailable bool   // no member at all
	Learner     string // a learner copies the partition (first of the run)
	Chain       string // members of the first partition, head first
}

type legendEntry struct {
	ID, Fill, State string
	Heads           int
}

// palette gives servers distinguishable colours, in ring order. It has no
// red or purple: those mark under-replicated and learning partitions.
var palette = []string{
	"#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#9c755f",
	"#2f4b7c", "#bab0ac", "#b6992d", "#8cd17d", "#ffbe7d", "#86bcb6",
}

const (
	ringSize  = 420.0
	ringOuter = 180.0
	ringInner = 118.0
)

func newRingView(r *ringmeta.Ring) *ringView {
	v := &ringView{Size: int(ringSize), Partitions: r.Partitions}
	colour := map[string]string{}
	heads := map[string]int{}
	for i, s := range r.Servers {
		colour[s.ID] = palette[i%len(palette)]
	}
	for p, c := range r.Chains {
		heads[c.Head()]++
		a := ringArc{From: p, To: p, Head: c.Head(), Under: len(c.Members) < r.Replicas,
			Unavailable: len(c.Members) == 0, Learner: c.Learner, Chain: strings.Join(c.Members, " → ")}
		if n := len(v.Arcs); n > 0 {
			last := &v.Arcs[n-1]
			if last.Head == a.Head && last.Under == a.Under && last.Unavailable == a.Unavailable && (last.Learner == "") == (a.Learner == "") {
				last.To = p
				continue
			}
		}
		v.Arcs = append(v.Arcs, a)
	}
	for i := range v.Arcs {
		a := &v.Arcs[i]
		a.Fill = colour[a.Head]
		if a.Unavailable {
			a.Fill = "#222"
		}
		a.D = sector(a.From, a.To+1, r.Partitions, ringInner, ringOuter)
	}
	for _, s := range r.Servers {
		v.Legend = append(v.Legend, legendEntry{ID: s.ID, Fill: colour[s.ID], State: string(s.State), Heads: heads[s.ID]})
	}
	slices.SortStableFunc(v.Legend, func(a, b legendEntry) int { return strings.Compare(a.ID, b.ID) })
	return v
}

// Band returns the path of a thin band outside (under-replication) or
// inside (learners) the arc.
func (a ringArc) Band(outside bool, partitions int) string {
	if outside {
		return sector(a.From, a.To+1, partitions, ringOuter+4, ringOuter+14)
	}
	return sector(a.From, a.To+1, partitions, ringInner-12, ringInner-4)
}

// sector is the SVG path of the annulus sector covering partitions
// [from, to) of p, clockwise from twelve o'clock.
func sector(from, to, p int, r0, r1 float64) string {
	c := ringSize / 2
	angle := func(i int) float64 { return 2*math.Pi*float64(i)/float64(p) - math.Pi/2 }
	pt := func(r, a float64) string { return fmt.Sprintf("%.2f %.2f", c+r*math.Cos(a), c+r*math.Sin(a)) }
	a0, a1 := angle(from), angle(to)
	if to-from == p { // a full circle: two half arcs (one arc cannot start and end at one point)
		mid := angle(from + p/2)
		if p == 1 {
			mid = a0 + math.Pi
		}
		return fmt.Sprintf("M %s A %g %g 0 0 1 %s A %g %g 0 0 1 %s L %s A %g %g 0 0 0 %s A %g %g 0 0 0 %s Z",
			pt(r1, a0), r1, r1, pt(r1, mid), r1, r1, pt(r1, a1), pt(r0, a1), r0, r0, pt(r0, mid), r0, r0, pt(r0, a0))
	}
	large := 0
	if a1-a0 > math.Pi {
		large = 1
	}
	return fmt.Sprintf("M %s A %g %g 0 %d 1 %s L %s A %g %g 0 %d 0 %s Z",
		pt(r1, a0), r1, r1, large, pt(r1, a1), pt(r0, a1), r0, r0, large, pt(r0, a0))
}
