package kvclient

import (
	"errors"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

// zonedRing is one partition on the chain a (head), b, c (tail), with a
// in zone za at (0,0), b in zb at (10,0) and c in zc at (3,0).
func zonedRing(t *testing.T) *routedRing {
	t.Helper()
	r := &ringmeta.Ring{
		Epoch: 1, Partitions: 1, Replicas: 3,
		Limits: ringmeta.Limits{MaxKeyBytes: 16, MaxValueBytes: 16},
		Servers: []ringmeta.Server{
			{ID: "a", Addr: "a:1", Zone: "za", Coords: []float64{0, 0}, State: ringmeta.StateActive},
			{ID: "b", Addr: "b:1", Zone: "zb", Coords: []float64{10, 0}, State: ringmeta.StateActive},
			{ID: "c", Addr: "c:1", Zone: "zc", Coords: []float64{3, 0}, State: ringmeta.StateActive},
		},
		Chains: []ringmeta.Chain{{Members: []string{"a", "b", "c"}, Version: 1}},
	}
	require.NoError(t, r.Validate())
	return newRoutedRing(r)
}

func TestNearestReadTarget(t *testing.T) {
	// Latencies measured so far: the own-zone member b looks slowest.
	measured := map[string]time.Duration{"a:1": time.Millisecond, "b:1": 40 * time.Millisecond, "c:1": 2 * time.Millisecond}
	tests := []struct {
		name   string
		zone   string
		coords []float64
		kind   opKind
		toTail bool
		failed string // an address whose last call failed
		down   string // a server the ring marks down
		want   string
	}{
		{name: "own zone wins though slower to measure", zone: "zb", want: "b:1"},
		{name: "no own-zone member: lowest latency", zone: "elsewhere", want: "a:1"},
		{name: "no zone: lowest latency", want: "a:1"},
		{name: "no own-zone member: least distance", zone: "elsewhere", coords: []float64{9, 1}, want: "b:1"},
		{name: "zone wins over coordinates", zone: "zc", coords: []float64{9, 1}, want: "c:1"},
		{name: "coordinates of other dimensions: lowest latency", coords: []float64{9}, want: "a:1"},
		{name: "dirty key goes to the tail", zone: "zb", toTail: true, want: "c:1"},
		{name: "writes go to the head", zone: "zb", kind: opPut, want: "a:1"},
		{name: "own-zone member failing: lowest latency", zone: "zb", failed: "b:1", want: "a:1"},
		{name: "own-zone member down: nearest by coordinates", zone: "zb", coords: []float64{9, 0}, down: "b", want: "c:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := zonedRing(t)
			if tt.down != "" {
				s := rr.srv[tt.down]
				s.State = ringmeta.StateDown
				rr.srv[tt.down] = s
			}
			c := &Client{lat: newLatencies()}
			c.cfg.Zone, c.cfg.Coords = tt.zone, tt.coords
			for addr, d := range measured {
				c.lat.observe(addr, d, nil)
			}
			if tt.failed != "" {
				c.lat.observe(tt.failed, 0, errors.New("connection refused"))
			}
			// Ties and unmeasured members are picked at random: ask often.
			for range 20 {
				o := &op{kind: tt.kind, key: []byte("k"), nearest: true, toTail: tt.toTail, header: &kvpb.RequestHeader{}}
				addr, err := c.route(rr, o)
				require.NoError(t, err)
				require.Equal(t, tt.want, addr)
			}
		})
	}
}

// TestNearestSpreadsOverOwnZone checks that two members in the client's
// zone share its reads by latency, as the whole chain does without zones.
func TestNearestSpreadsOverOwnZone(t *testing.T) {
	rr := zonedRing(t)
	s := rr.srv["c"]
	s.Zone = "zb"
	rr.srv["c"] = s
	c := &Client{lat: newLatencies()}
	c.cfg.Zone = "zb"
	c.lat.observe("a:1", time.Microsecond, nil)
	c.lat.observe("b:1", 9*time.Millisecond, nil)
	c.lat.observe("c:1", 3*time.Millisecond, nil)
	require.Equal(t, "c", c.nearestMember(rr, []string{"a", "b", "c"}))
}

// TestNearestTriesEveryUnmeasuredMember checks that unmeasured members,
// which count as nearest, are all picked in turn, never none of them.
func TestNearestTriesEveryUnmeasuredMember(t *testing.T) {
	l := newLatencies()
	addr := map[string]string{"a": "a:1", "b": "b:1", "c": "c:1"}
	seen := map[string]int{}
	for range 300 {
		seen[l.nearest([]string{"a", "b", "c"}, addr)]++
	}
	require.Len(t, seen, 3, "picked: %v", seen)
	require.Zero(t, seen[""])
}
