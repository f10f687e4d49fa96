package ecs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/config"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// controller is the leader's control loop. One goroutine (run) owns ring and
// members; nothing else touches them.
type controller struct {
	cfg    config.ECS
	lg     *zap.Logger
	cli    *clientv3.Client
	rings  *ringStore
	expect []string // servers this ECS launched; readiness waits for them
	events *eventLog
	gauges *ecsMetrics

	ring    *ringmeta.Ring
	members map[string]etcdkeys.Member
	started time.Time
	onReady func(*ringmeta.Ring) // called once, when every expected server serves
}

// run loads the ring, follows membership and reconciles until ctx ends or
// publishing fails for a reason other than a lost race.
func (c *controller) run(ctx context.Context) error {
	c.started = time.Now()
	if err := c.loadOrCreate(ctx); err != nil {
		return err
	}
	resp, err := c.cli.Get(ctx, etcdkeys.ServersPrefix(c.cfg.Cluster), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("ecs: read members: %w", err)
	}
	c.members = map[string]etcdkeys.Member{}
	for _, kv := range resp.Kvs {
		c.applyMember(clientv3.EventTypePut, kv.Key, kv.Value)
	}
	wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), etcdkeys.ServersPrefix(c.cfg.Cluster),
		clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	tick := time.NewTicker(c.cfg.LeaseTTL / 2)
	defer tick.Stop()
	for {
		if err := c.reconcile(ctx); err != nil {
			return err
		}
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				return fmt.Errorf("ecs: membership watch ended: %v", wr.Err())
			}
			for _, ev := range wr.Events {
				c.applyMember(ev.Type, ev.Kv.Key, ev.Kv.Value)
			}
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// loadOrCreate reads the ring, creating the empty first epoch (P, R and the
// limits, fixed from now on) for a new cluster.
func (c *controller) loadOrCreate(ctx context.Context) error {
	r, err := c.rings.load(ctx)
	if err != nil {
		return err
	}
	if r == nil {
		r = &ringmeta.Ring{
			Epoch: 1, Partitions: c.cfg.Partitions, Replicas: c.cfg.Replicas,
			Limits: ringmeta.Limits{MaxKeyBytes: c.cfg.MaxKeyBytes, MaxValueBytes: c.cfg.MaxValueBytes},
		}
		if err := c.rings.publish(ctx, r); err != nil {
			return err
		}
		c.events.add("cluster created", fmt.Sprintf("%d partitions, %d replicas", r.Partitions, r.Replicas))
	} else if r.Partitions != c.cfg.Partitions || r.Replicas != c.cfg.Replicas {
		c.lg.Warn("cluster exists; keeping its partitions and replicas",
			zap.Int("partitions", r.Partitions), zap.Int("replicas", r.Replicas))
	}
	c.ring = r
	c.gauges.ringPublished(r)
	return nil
}

func (c *controller) applyMember(t mvccpb.Event_EventType, key, value []byte) {
	id := string(key[len(etcdkeys.ServersPrefix(c.cfg.Cluster)):])
	if t == clientv3.EventTypeDelete {
		delete(c.members, id)
		return
	}
	m, err := etcdkeys.UnmarshalMember(value)
	if err != nil || m.ID != id {
		c.lg.Warn("ignoring malformed member record", zap.String("id", id), zap.Error(err))
		return
	}
	c.members[id] = m
}

// reconcile publishes the next epoch when membership differs from the ring.
func (c *controller) reconcile(ctx context.Context) error {
	next := c.ring.Clone()
	changed := c.admit(next)
	if changed || len(next.Chains) == 0 {
		laid, err := c.layout(next)
		if err != nil {
			return err
		}
		changed = changed || laid
	}
	if changed {
		next.Epoch = c.ring.Epoch + 1
		if err := c.rings.publish(ctx, next); err != nil {
			if errors.Is(err, ErrRingConflict) {
				return c.loadOrCreate(ctx) // someone else wrote; start from theirs
			}
			return err
		}
		c.ring = next
		c.gauges.ringPublished(next)
		c.lg.Info("ring published", zap.Uint64("epoch", next.Epoch), zap.Int("servers", len(next.Servers)))
	}
	c.checkReady()
	return nil
}

// admit brings next.Servers in line with the registered members: new members
// join as active, changed addresses are updated, members whose lease is gone
// are marked down (after a grace period at startup, so servers restarting
// with the ECS are not flapped).
func (c *controller) admit(next *ringmeta.Ring) bool {
	changed := false
	for id, m := range c.members {
		want := ringmeta.Server{ID: id, Addr: m.Addr, Zone: m.Zone, State: ringmeta.StateActive, Metrics: m.Metrics}
		i := slices.IndexFunc(next.Servers, func(s ringmeta.Server) bool { return s.ID == id })
		switch {
		case i < 0:
			next.Servers = append(next.Servers, want)
			c.events.add("server joined", id+" at "+m.Addr)
		case next.Servers[i] != want:
			if next.Servers[i].State != ringmeta.StateActive {
				c.events.add("server up", id)
			}
			next.Servers[i] = want
		default:
			continue
		}
		changed = true
	}
	if time.Since(c.started) < c.cfg.LeaseTTL {
		return changed
	}
	for i, s := range next.Servers {
		if _, ok := c.members[s.ID]; !ok && s.State == ringmeta.StateActive {
			next.Servers[i].State = ringmeta.StateDown
			c.events.add("server down", s.ID)
			changed = true
		}
	}
	return changed
}

// layout gives a ring without chains its first placement once enough servers
// are active. Later membership changes keep the chains: moving data between
// servers is the rebalancer's job.
func (c *controller) layout(next *ringmeta.Ring) (bool, error) {
	if len(next.Chains) > 0 {
		return false, nil
	}
	var cands []hashring.Server
	for _, s := range next.Servers {
		if s.State == ringmeta.StateActive {
			cands = append(cands, hashring.Server{ID: s.ID, Zone: s.Zone})
		}
	}
	if len(cands) == 0 || len(cands) < max(len(c.expect), next.Replicas) {
		return false, nil
	}
	chains, err := hashring.Initial(cands, next.Partitions, next.Replicas)
	if err != nil {
		return false, fmt.Errorf("ecs: initial layout: %w", err)
	}
	next.Chains = make([]ringmeta.Chain, len(chains))
	for p, members := range chains {
		next.Chains[p] = ringmeta.Chain{Members: members, Version: 1}
	}
	c.events.add("layout created", fmt.Sprintf("%d partitions over %d servers", next.Partitions, len(cands)))
	return true, nil
}

// checkReady fires onReady once every expected server runs the current
// epoch (it rewrites its member record after applying a ring).
func (c *controller) checkReady() {
	if c.onReady == nil || len(c.ring.Chains) == 0 {
		return
	}
	for _, id := range c.expect {
		if m, ok := c.members[id]; !ok || m.Epoch < c.ring.Epoch {
			return
		}
	}
	c.onReady(c.ring)
	c.onReady = nil
}
