package ecs

import (
	"slices"
	"sort"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Failure causes, as metric labels and in events.
const (
	causeLease   = "lease"   // its servers/<id> key is gone (lease expired or revoked)
	causeProbe   = "probe"   // consecutive health probes failed
	causeRestart = "restart" // a new incarnation registered while the old one was in chains
)

// failure is one server failed over in an epoch.
type failure struct {
	id     string
	cause  string
	at     time.Time // when it was detected
	chains int       // chains it left
}

func (f failure) what() string {
	if f.cause == causeRestart {
		return "restarted"
	}
	return "down"
}

// applyMember follows servers/<id>. A record with a new incarnation means
// the process restarted: its old copies cannot be trusted to be current.
func (c *controller) applyMember(t mvccpb.Event_EventType, key, value []byte) {
	id := string(key[len(etcdkeys.ServersPrefix(c.cfg.Cluster)):])
	if t == clientv3.EventTypeDelete {
		if _, ok := c.members[id]; ok {
			c.suspect[id] = time.Now()
		}
		delete(c.members, id)
		return
	}
	m, err := etcdkeys.UnmarshalMember(value)
	if err != nil || m.ID != id {
		c.lg.Warn("ignoring malformed member record", zap.String("id", id), zap.Error(err))
		return
	}
	if old, ok := c.incarnation[id]; ok && old != m.Incarnation {
		c.restarted[id] = true
		c.suspect[id] = time.Now()
		c.lg.Info("server restarted", zap.String("id", id), zap.Uint64("incarnation", m.Incarnation))
	}
	c.incarnation[id] = m.Incarnation
	c.members[id], c.seen[id] = m, true
}

// applyHealth records a probe verdict for the server's current incarnation.
func (c *controller) applyHealth(ev healthEvent) {
	if m, ok := c.members[ev.id]; !ok || m.Incarnation != ev.incarnation {
		return // a verdict about a process that is gone
	}
	c.health[ev.id] = ev
	if !ev.up {
		c.suspect[ev.id] = ev.at
	}
}

// up reports whether the detector's latest verdict on the server's current
// incarnation is healthy.
func (c *controller) up(id string) bool {
	h, ok := c.health[id]
	return ok && h.up && h.incarnation == c.members[id].Incarnation
}

// probedDown reports whether the detector's latest verdict on this
// incarnation is down.
func (c *controller) probedDown(id string, incarnation uint64) bool {
	h, ok := c.health[id]
	return ok && !h.up && h.incarnation == incarnation
}

// admit brings next.Servers in line with the registered members: new members
// join as active, changed addresses are updated, and a down server whose
// key is back and whose probes succeed is active (or leaving) again; it
// dropped the data of the chains it was removed from.
func (c *controller) admit(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	for id, inc := range st.Removed {
		if m, ok := c.members[id]; !ok || m.Incarnation != inc {
			delete(st.Removed, id) // gone or restarted: welcome as a new server
		}
	}
	ids := make([]string, 0, len(c.members))
	for id := range c.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := c.members[id]
		if _, gone := st.Removed[id]; gone {
			continue // removed by `ecs remove` and still running
		}
		i := slices.IndexFunc(next.Servers, func(s ringmeta.Server) bool { return s.ID == id })
		if i < 0 {
			next.Servers = append(next.Servers, ringmeta.Server{ID: id, Addr: m.Addr, Zone: m.Zone, Coords: m.Coords, State: ringmeta.StateActive, Metrics: m.Metrics})
			delete(c.restarted, id)
			c.events.add("server joined", id+" at "+m.Addr)
			ep.changed = true
			continue
		}
		s := &next.Servers[i]
		if s.Addr != m.Addr || s.Zone != m.Zone || !slices.Equal(s.Coords, m.Coords) || s.Metrics != m.Metrics {
			s.Addr, s.Zone, s.Coords, s.Metrics = m.Addr, m.Zone, m.Coords, m.Metrics
			ep.changed = true
		}
		if s.State == ringmeta.StateDown && c.up(id) {
			s.State = ringmeta.StateActive
			if st.Removing[id] {
				s.State = ringmeta.StateLeaving
			}
			delete(c.restarted, id) // it was stripped when it went down
			c.events.add("server up", id)
			ep.changed = true
		}
	}
}

// failover is step (a): in this one epoch, every server found failed is
// marked down, and every chain loses its down and restarted members where
// ecs/core allows it (core.Remove): a chain keeps at least one member known
// to hold every acknowledged write, so a down member that is the last such
// one stays until it comes back on its data, and leaves in a later epoch
// once it is not needed (down servers are handed to core.Remove on every
// pass). A restarted server stays active but leaves its chains all the same.
func (c *controller) failover(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	failed := c.detectFailed(next, ep)
	gone := map[string]bool{}
	for _, s := range next.Servers {
		if s.State == ringmeta.StateDown {
			gone[s.ID] = true
		}
	}
	for _, f := range failed {
		gone[f.id] = true
	}
	left := map[string]int{}
	for p := range next.Chains {
		before := partition(next, st, p)
		after := core.Remove(before, gone)
		if after.Chain.Version == before.Chain.Version {
			continue // core.Remove bumps the version exactly when it changes the chain
		}
		setPartition(next, st, p, after)
		ep.touch(p)
		for id := range gone {
			if holdsIn(before.Chain, id) && !holdsIn(after.Chain, id) {
				left[id]++
			}
		}
	}
	for _, f := range failed {
		f.chains = left[f.id]
		if f.cause != causeRestart || f.chains > 0 {
			ep.failed = append(ep.failed, f)
		} else {
			delete(c.restarted, f.id)
		}
	}
}

// detectFailed marks down every server whose lease is gone or whose probes
// fail, and returns those and the servers that restarted.
func (c *controller) detectFailed(next *ringmeta.Ring, ep *epochChange) []failure {
	now := time.Now()
	graceOver := now.Sub(c.started) >= c.cfg.LeaseTTL
	isolated := c.det != nil && c.det.isolated()
	if isolated && !c.isolatedLogged {
		c.lg.Warn("most servers fail their probes at once: suspecting this ECS's network; failing over on membership leases only")
		c.events.add("probes suspended", "most servers unreachable from the ECS at once")
	}
	c.isolatedLogged = isolated
	var out []failure
	for i := range next.Servers {
		s := &next.Servers[i]
		if s.State == ringmeta.StateDown {
			continue
		}
		m, present := c.members[s.ID]
		cause := ""
		switch {
		// A server absent since this leader started may be restarting
		// along with the ECS: it gets one lease TTL to register.
		case !present && (c.seen[s.ID] || graceOver):
			cause = causeLease
		case present && c.probedDown(s.ID, m.Incarnation) && !isolated:
			cause = causeProbe
		case present && c.restarted[s.ID]:
			cause = causeRestart
		}
		if cause == "" {
			continue
		}
		if cause != causeRestart {
			s.State = ringmeta.StateDown
			c.events.add("server down", s.ID+" ("+cause+")")
			ep.changed = true
		}
		at, ok := c.suspect[s.ID]
		if !ok {
			at = now
		}
		out = append(out, failure{id: s.ID, cause: cause, at: at})
	}
	return out
}

// holdsIn reports whether id is a member or the learner of ch.
func holdsIn(ch ringmeta.Chain, id string) bool {
	return ch.Learner == id || ch.Index(id) >= 0
}
