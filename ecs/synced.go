package ecs

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// This file keeps the unsynced marks (ecs/core) in the controller state: a
// promoted learner is marked in the epoch that promotes it (rebalance.go),
// and the mark goes when the member reports synced/<id>/<p> with a chain
// version that covers it. Reports are deleted in the transaction that writes
// the state next, or, when they change nothing, on their own.

// partKey names a per-server, per-partition key: ready/<id>/<p> or
// synced/<id>/<p>.
type partKey struct {
	id string
	p  int
}

// parsePartKey splits <prefix><id>/<p>.
func parsePartKey(key []byte, prefix string) (partKey, bool) {
	id, ps, ok := strings.Cut(strings.TrimPrefix(string(key), prefix), "/")
	p, err := strconv.Atoi(ps)
	return partKey{id, p}, ok && err == nil && id != ""
}

// sortedKeys lists a key table's keys by partition, then server.
func sortedKeys(m map[partKey]string) []partKey {
	keys := make([]partKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].p < keys[j].p || keys[i].p == keys[j].p && keys[i].id < keys[j].id })
	return keys
}

// partition returns partition p of next with its marks in st.
func partition(next *ringmeta.Ring, st *ctlstate.State, p int) core.Partition {
	return core.Partition{Chain: next.Chains[p], Unsynced: st.Unsynced[p]}
}

// setPartition writes pt back into next and st.
func setPartition(next *ringmeta.Ring, st *ctlstate.State, p int, pt core.Partition) {
	next.Chains[p] = pt.Chain
	if len(pt.Unsynced) > 0 {
		st.Unsynced[p] = pt.Unsynced
	} else {
		delete(st.Unsynced, p)
	}
}

func (c *controller) applySynced(t mvccpb.Event_EventType, key, value []byte) {
	c.applyReport(c.synced, etcdkeys.SyncedPrefix(c.cfg.Cluster), "synced", t, key, value)
}

// clearSynced takes in the members' synced reports (core.Clear). Every
// report seen is deleted with the next write of the state: one that clears
// nothing is stale (an older version, a member that left or was demoted).
func (c *controller) clearSynced(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	for _, k := range sortedKeys(c.synced) {
		ep.syncedDel = append(ep.syncedDel, k)
		v, err := strconv.ParseUint(strings.TrimSpace(c.synced[k]), 10, 64)
		if err != nil || k.p < 0 || k.p >= len(next.Chains) {
			continue
		}
		pt, ok := core.Clear(partition(next, st, k.p), k.id, v)
		if !ok {
			continue
		}
		setPartition(next, st, k.p, pt)
		ep.stateChanged = true
		c.lg.Info("member synced", zap.String("id", k.id), zap.Int("partition", k.p), zap.Uint64("chain-version", v))
	}
}

// keyDeletes lists the deletes of the ready and synced keys an epoch
// consumed, for the transaction that writes the state.
func (c *controller) keyDeletes(ep *epochChange) []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(ep.readyDel)+len(ep.syncedDel))
	for _, k := range ep.readyDel {
		ops = append(ops, clientv3.OpDelete(etcdkeys.Ready(c.cfg.Cluster, k.id, k.p)))
	}
	for _, k := range ep.syncedDel {
		ops = append(ops, clientv3.OpDelete(etcdkeys.Synced(c.cfg.Cluster, k.id, k.p)))
	}
	return ops
}

// forgetKeys drops the consumed keys once their deletes committed.
func (c *controller) forgetKeys(ep *epochChange) {
	for _, k := range ep.readyDel {
		delete(c.ready, k)
	}
	for _, k := range ep.syncedDel {
		delete(c.synced, k)
	}
}

// writeState writes a state whose ring did not change (a mark cleared) with
// the consumed keys' deletes, under the same guards as a ring publish.
func (c *controller) writeState(ctx context.Context, st ctlstate.State, ep *epochChange) error {
	ops := append([]clientv3.Op{clientv3.OpPut(etcdkeys.ControllerState(c.cfg.Cluster), st.Marshal())}, c.keyDeletes(ep)...)
	if err := c.rings.commit(ctx, ops...); err != nil {
		if errors.Is(err, ErrRingConflict) {
			c.lg.Warn("ring changed under us; reloading", zap.Error(err))
			return c.loadOrCreate(ctx)
		}
		return err
	}
	c.recordState(st, ep)
	c.forgetKeys(ep)
	return nil
}

// deleteStale deletes ready and synced keys that led to no change. Best
// effort: a key left behind is seen again and deleted on the next pass.
func (c *controller) deleteStale(ctx context.Context, ep *epochChange) {
	for _, op := range c.keyDeletes(ep) {
		if _, err := c.cli.Do(ctx, op); err != nil {
			c.lg.Warn("delete stale key", zap.String("key", string(op.KeyBytes())), zap.Error(err))
			return
		}
	}
	c.forgetKeys(ep)
}
