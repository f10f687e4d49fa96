package ecs

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// This file drives re-replication and rebalancing (DESIGN §4-5): it
// promotes learners that wrote ready/<id>/<p> (step c), applies the
// planner's steps (b, d) and keeps the progress record.

func (c *controller) applyReady(t mvccpb.Event_EventType, key, value []byte) {
	c.applyReport(c.ready, etcdkeys.ReadyPrefix(c.cfg.Cluster), "ready", t, key, value)
}

// applyReport keeps a server's per-partition report (ready or synced key)
// in reports, as the watch delivers it.
func (c *controller) applyReport(reports map[partKey]string, prefix, what string, t mvccpb.Event_EventType, key, value []byte) {
	k, ok := parsePartKey(key, prefix)
	if !ok {
		c.lg.Warn("ignoring malformed "+what+" key", zap.String("key", string(key)))
		return
	}
	if t == clientv3.EventTypeDelete {
		delete(reports, k)
		return
	}
	reports[k] = string(value)
}

// promote is step (c): a learner whose ready key names the chain version it
// was made learner at, while the chain still has it as learner at that
// version, becomes the new tail, marked unsynced in the same epoch
// (core.Promote). Every ready key seen is deleted with the epoch; those that
// do not match are stale (the chain moved on).
func (c *controller) promote(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	for _, k := range sortedKeys(c.ready) {
		ep.readyDel = append(ep.readyDel, k)
		v, err := strconv.ParseUint(strings.TrimSpace(c.ready[k]), 10, 64)
		if err != nil || k.p < 0 || k.p >= len(next.Chains) || ep.touched[k.p] {
			continue
		}
		pt, ok := core.Promote(partition(next, st, k.p), k.id, v)
		if !ok {
			continue
		}
		setPartition(next, st, k.p, pt)
		ep.touch(k.p)
		ep.promoted = append(ep.promoted, k)
	}
}

// targetCache keeps the target layout for as long as the servers that may
// hold replicas stay the same. Recomputing it as chains move would let the
// greedy balancing pick other partitions half way and move more than needed;
// a kept target is always reachable, since the steps only move chains
// towards it. (It also saves Rebalance's milliseconds on every pass.)
type targetCache struct {
	eligible string
	target   [][]string
}

// planStep runs the planner over next and applies its steps to the
// partitions whose servers have settled, then updates the progress record.
func (c *controller) planStep(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) error {
	eligible, sources := c.placeable(next, st)
	key := eligibleKey(eligible)
	frozen := c.unsettled(ep.touched)
	for p := range st.Unsynced {
		frozen[p] = true // core.Partition.Frozen: it waits for a member's synced report
	}
	in := planInput{
		chains: next.Chains, eligible: eligible, sources: sources, replicas: next.Replicas,
		maxMoves: c.cfg.MaxMoves, leaves: st.Leaves, frozen: frozen,
	}
	if c.targets.eligible == key && len(c.targets.target) == len(next.Chains) {
		in.target = c.targets.target
	}
	pl, err := planMoves(in)
	if err != nil {
		return fmt.Errorf("ecs: plan: %w", err)
	}
	c.targets = targetCache{eligible: key, target: pl.target}
	c.applySteps(next, st, pl, ep)
	if len(pl.pending) == 0 && learners(next.Chains) == 0 {
		c.balanceRoles(next, st, frozen, ep)
	}
	st.Leaves = pruneLeaves(next.Chains, st.Leaves, pl.want)
	// Progress goes out with the next epoch; alone it is no reason for one.
	ep.pending = pendingOf(next.Chains, pl.target)
	st.Moves, ep.finished = st.Moves.Advance(c.pendingSet, ep.pending, learners(next.Chains), time.Now())
	if st.Moves.Total > 0 && st.Moves.StartEpoch == 0 {
		st.Moves.StartEpoch = c.ring.Epoch + 1 // a new round goes out with the next epoch
		cs := ctlstate.SumCopies(c.members)
		st.Moves.BaseCopiedKeys, st.Moves.BaseCopiedBytes = cs.Keys, cs.Bytes
	}
	return nil
}

// unsettled returns the partitions that may not take a planned step now:
// those changed in this epoch, and those whose members and learner have not
// all reported applying the epoch of their chain's last change (or
// settleTimeout passed). So each server sees every step of a chain in its
// own epoch before the next, while other partitions go on. This only paces
// the steps and lives in the leader's memory; what safety needs (the
// unsynced marks) is in the state, in etcd.
func (c *controller) unsettled(touched map[int]bool) map[int]bool {
	out := make(map[int]bool, len(touched)+len(c.changed))
	for p := range touched {
		out[p] = true
	}
	for p, mark := range c.changed {
		if p >= len(c.ring.Chains) || time.Since(mark.at) >= settleTimeout || c.applied(c.ring.Chains[p], mark.epoch) {
			delete(c.changed, p)
			continue
		}
		out[p] = true
	}
	return out
}

// applied reports whether every registered server of the chain reported an
// epoch at least epoch.
func (c *controller) applied(ch ringmeta.Chain, epoch uint64) bool {
	for _, id := range ch.Members {
		if m, ok := c.members[id]; ok && m.Epoch < epoch {
			return false
		}
	}
	if m, ok := c.members[ch.Learner]; ok && m.Epoch < epoch {
		return false
	}
	return true
}

// changeMark is when a partition's chain last changed.
type changeMark struct {
	epoch uint64
	at    time.Time
}

// applySteps writes the planner's removals (d) and new learners (b) into
// next, through ecs/core, which refuses a step on a partition with an
// unsynced member (the planner never plans one: such partitions are frozen).
func (c *controller) applySteps(next *ringmeta.Ring, st *ctlstate.State, pl movePlan, ep *epochChange) {
	for p, out := range pl.removals {
		pt, err := core.Shrink(partition(next, st, p), out)
		if err != nil {
			c.lg.Warn("planned removal refused", zap.Int("partition", p), zap.Strings("leavers", out), zap.Error(err))
			continue
		}
		setPartition(next, st, p, pt)
		ep.touch(p)
	}
	for p, id := range pl.learners {
		pt, err := core.AddLearner(partition(next, st, p), id)
		if err != nil {
			c.lg.Warn("planned learner refused", zap.Int("partition", p), zap.String("learner", id), zap.Error(err))
			continue
		}
		setPartition(next, st, p, pt)
		ep.touch(p)
		if l := pl.leaves[p]; l != nil {
			st.Leaves[p] = l
		} else {
			delete(st.Leaves, p)
		}
	}
}

// noteRound logs the start and the end of a rebalancing round.
func (c *controller) noteRound(before, after ctlstate.Progress, finished int) {
	c.gauges.movesDone.Add(float64(finished))
	switch {
	case after.StartedUnixMs != before.StartedUnixMs && after.Pending > 0:
		c.events.add("rebalance started", fmt.Sprintf("%d partitions to move", after.Pending))
	case before.Pending > 0 && after.Pending == 0 && after.Total > 0:
		took := time.Duration(after.UpdatedUnixMs-after.StartedUnixMs) * time.Millisecond
		c.events.add("rebalance done", fmt.Sprintf("%d partitions moved, %d keys, in %v", after.Total, after.KeysMoved, took.Round(time.Millisecond)))
	}
}

// placeable returns the servers that may receive replicas (active, not being
// removed) and those a learner may copy from (active or leaving).
func (c *controller) placeable(next *ringmeta.Ring, st *ctlstate.State) ([]hashring.Server, map[string]bool) {
	var eligible []hashring.Server
	sources := map[string]bool{}
	for _, s := range next.Servers {
		if _, ok := c.members[s.ID]; !ok {
			continue
		}
		switch s.State {
		case ringmeta.StateActive:
			sources[s.ID] = true
			if !st.Removing[s.ID] {
				eligible = append(eligible, hashring.Server{ID: s.ID, Zone: s.Zone})
			}
		case ringmeta.StateLeaving:
			sources[s.ID] = true
		}
	}
	return eligible, sources
}

func eligibleKey(servers []hashring.Server) string {
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.ID + "@" + s.Zone + ",")
	}
	return b.String()
}

// dropDrained removes from the ring's list every server being removed that
// held nothing in the published epoch and holds nothing in next, so it has
// seen itself leave its last chain before it leaves the list.
func (c *controller) dropDrained(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	ids := make([]string, 0, len(st.Removing))
	for id := range st.Removing {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if holds(c.ring, id) || holds(next, id) {
			continue
		}
		next.Servers = slices.DeleteFunc(next.Servers, func(s ringmeta.Server) bool { return s.ID == id })
		delete(st.Removing, id)
		if m, ok := c.members[id]; ok {
			st.Removed[id] = m.Incarnation
		}
		ep.removed = append(ep.removed, id)
		ep.changed = true
	}
}

// holds reports whether id is a member or the learner of any chain.
func holds(r *ringmeta.Ring, id string) bool {
	for _, ch := range r.Chains {
		if ch.Learner == id || ch.Index(id) >= 0 {
			return true
		}
	}
	return false
}

// pendingOf lists the partitions whose chain is not yet its target: a
// learner is still copying or the members differ. With no target (no
// server can take replicas) only learners count.
func pendingOf(chains []ringmeta.Chain, target [][]string) map[int]struct{} {
	out := map[int]struct{}{}
	for p, ch := range chains {
		if ch.Learner != "" || target != nil && !sameSet(ch.Members, target[p]) {
			out[p] = struct{}{}
		}
	}
	return out
}

func learners(chains []ringmeta.Chain) int {
	n := 0
	for _, ch := range chains {
		if ch.Learner != "" {
			n++
		}
	}
	return n
}

// balanceRoles reorders chains so that heads and tails spread evenly over
// the servers (core.PlanRoles), once the replicas are where the plan wants
// them: at most max-moves chains an epoch, none that is frozen or changed
// in this epoch.
func (c *controller) balanceRoles(next *ringmeta.Ring, st *ctlstate.State, frozen map[int]bool, ep *epochChange) {
	movable := func(p int) bool { return !frozen[p] && !ep.touched[p] && next.Chains[p].Learner == "" }
	for p, order := range core.PlanRoles(next.Chains, movable, max(c.cfg.MaxMoves, 1)) {
		pt, err := core.Reorder(partition(next, st, p), order)
		if err != nil {
			c.lg.Warn("planned reorder refused", zap.Int("partition", p), zap.Strings("order", order), zap.Error(err))
			continue
		}
		setPartition(next, st, p, pt)
		ep.touch(p)
	}
}
