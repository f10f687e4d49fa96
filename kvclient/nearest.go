package kvclient

import (
	"math"

	"github.com/ecskv/ecskv/common/ringmeta"
)

// nearestMember picks the chain member a nearest read goes to. Place wins
// over measurement, because a few early round trips (a cold connection, a
// busy moment) say little about where a server is: members in the
// client's zone first; with none, the members at the least distance by
// coordinates; among those, and with neither, the lowest measured latency.
// Members that are down or failed a call lately lose their place, so reads
// leave them for the others until the ring drops them.
func (c *Client) nearestMember(rr *routedRing, members []string) string {
	healthy := make([]string, 0, len(members))
	for _, id := range members {
		if rr.srv[id].State != ringmeta.StateDown && !c.lat.failing(rr.addr[id]) {
			healthy = append(healthy, id)
		}
	}
	cands := inZone(c.cfg.Zone, healthy, rr.srv)
	if len(cands) == 0 {
		cands = closest(c.cfg.Coords, healthy, rr.srv)
	}
	if len(cands) == 0 {
		cands = healthy
	}
	if len(cands) == 0 {
		cands = members // every member failing: measurement decides
	}
	return c.lat.nearest(cands, rr.addr)
}

// inZone returns the members in zone ("": none).
func inZone(zone string, members []string, srv map[string]ringmeta.Server) []string {
	if zone == "" {
		return nil
	}
	var in []string
	for _, id := range members {
		if srv[id].Zone == zone {
			in = append(in, id)
		}
	}
	return in
}

// closest returns the members at the least Euclidean distance from
// coords, counting only those with as many coordinates as the client.
func closest(coords []float64, members []string, srv map[string]ringmeta.Server) []string {
	if len(coords) == 0 {
		return nil
	}
	var best []string
	bestD := math.Inf(1)
	for _, id := range members {
		sc := srv[id].Coords
		if len(sc) != len(coords) {
			continue
		}
		d := 0.0
		for i := range sc {
			d += (sc[i] - coords[i]) * (sc[i] - coords[i])
		}
		switch {
		case d < bestD:
			best, bestD = []string{id}, d
		case d == bestD:
			best = append(best, id)
		}
	}
	return best
}
