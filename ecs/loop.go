package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The controller's event loop: one goroutine takes in etcd watch events,
// probe verdicts and digest sizes, and reconciles after each batch.

// maxBatch bounds how many queued events one reconcile pass takes in.
const maxBatch = 256

// step reconciles, then waits for the next event and takes in every other
// event already queued, so a burst (learners reporting ready together,
// servers reporting an epoch) makes one epoch, not one each.
func (c *controller) step(ctx context.Context, w watches) error {
	if err := c.reconcile(ctx); err != nil {
		return err
	}
	due := make(<-chan time.Time) // never fires, unless an epoch is held
	if !c.holdUntil.IsZero() {
		t := time.NewTimer(time.Until(c.holdUntil))
		defer t.Stop()
		due = t.C
	}
	if _, err := c.next(ctx, w, due); err != nil {
		return err
	}
	for range maxBatch {
		if got, err := c.next(ctx, w, nil); err != nil || !got {
			return err
		}
	}
	return nil
}

// loopEvent is one event for the controller, from whichever source.
type loopEvent struct {
	src    int // one of the src* constants
	wr     clientv3.WatchResponse
	ok     bool // the watch channel is still open
	health healthEvent
	keys   uint64
}

const (
	srcTick = iota
	srcMembers
	srcReady
	srcSynced
	srcRequests
	srcHealth
	srcSizes
)

// next takes in one event. With due nil it returns false at once when none
// is queued; else it waits for one, or until due fires.
func (c *controller) next(ctx context.Context, w watches, due <-chan time.Time) (bool, error) {
	var ev loopEvent
	if due != nil {
		select {
		case ev.wr, ev.ok = <-w.members:
			ev.src = srcMembers
		case ev.wr, ev.ok = <-w.ready:
			ev.src = srcReady
		case ev.wr, ev.ok = <-w.synced:
			ev.src = srcSynced
		case ev.wr, ev.ok = <-w.requests:
			ev.src = srcRequests
		case ev.health = <-c.det.out:
			ev.src = srcHealth
		case ev.keys = <-c.sizes:
			ev.src = srcSizes
		case <-w.tick.C:
		case <-due:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	} else {
		select {
		case ev.wr, ev.ok = <-w.members:
			ev.src = srcMembers
		case ev.wr, ev.ok = <-w.ready:
			ev.src = srcReady
		case ev.wr, ev.ok = <-w.synced:
			ev.src = srcSynced
		case ev.wr, ev.ok = <-w.requests:
			ev.src = srcRequests
		case ev.health = <-c.det.out:
			ev.src = srcHealth
		case ev.keys = <-c.sizes:
			ev.src = srcSizes
		default:
			return false, nil
		}
	}
	return true, c.apply(ctx, ev)
}

// apply takes in one event.
func (c *controller) apply(ctx context.Context, ev loopEvent) error {
	switch ev.src {
	case srcMembers, srcReady, srcSynced, srcRequests:
		if err := watchErr(ctx, ev.wr, ev.ok, [...]string{srcMembers: "membership", srcReady: "ready", srcSynced: "synced", srcRequests: "requests"}[ev.src]); err != nil {
			return err
		}
		for _, e := range ev.wr.Events {
			switch {
			case ev.src == srcMembers:
				c.applyMember(e.Type, e.Kv.Key, e.Kv.Value)
			case ev.src == srcReady:
				c.applyReady(e.Type, e.Kv.Key, e.Kv.Value)
			case ev.src == srcSynced:
				c.applySynced(e.Type, e.Kv.Key, e.Kv.Value)
			case e.Type == clientv3.EventTypePut:
				c.handleRequest(ctx, e.Kv.Key, e.Kv.Value)
			}
		}
	case srcHealth:
		c.applyHealth(ev.health)
	case srcSizes:
		c.state.Moves.KeysMoved += ev.keys // published with the next epoch
		c.gauges.keysMoved.Add(float64(ev.keys))
	}
	return nil
}

// watches are the loop's event sources besides the detector.
type watches struct {
	members, ready, synced, requests clientv3.WatchChan
	tick                             *time.Ticker // paces retries, the grace period and the settle gate
}

// watchAll reads members, ready and synced keys and pending requests at one
// revision and watches each prefix from the next, so no event falls in
// between.
func (c *controller) watchAll(ctx context.Context) (watches, error) {
	cl := c.cfg.Cluster
	resp, err := c.cli.Txn(ctx).Then(
		clientv3.OpGet(etcdkeys.ServersPrefix(cl), clientv3.WithPrefix()),
		clientv3.OpGet(etcdkeys.ReadyPrefix(cl), clientv3.WithPrefix()),
		clientv3.OpGet(etcdkeys.SyncedPrefix(cl), clientv3.WithPrefix()),
		clientv3.OpGet(etcdkeys.RequestsPrefix(cl), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return watches{}, fmt.Errorf("ecs: read members: %w", err)
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		c.applyMember(clientv3.EventTypePut, kv.Key, kv.Value)
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		c.applyReady(clientv3.EventTypePut, kv.Key, kv.Value)
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		c.applySynced(clientv3.EventTypePut, kv.Key, kv.Value)
	}
	for _, kv := range resp.Responses[3].GetResponseRange().Kvs {
		c.handleRequest(ctx, kv.Key, kv.Value)
	}
	rev := resp.Header.Revision + 1
	wctx := clientv3.WithRequireLeader(ctx)
	watch := func(prefix string) clientv3.WatchChan {
		return c.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	}
	return watches{members: watch(etcdkeys.ServersPrefix(cl)), ready: watch(etcdkeys.ReadyPrefix(cl)),
		synced: watch(etcdkeys.SyncedPrefix(cl)), requests: watch(etcdkeys.RequestsPrefix(cl))}, nil
}

// watchErr turns the end of a watch into the end of the loop: an error,
// unless the loop is stopping anyway.
func watchErr(ctx context.Context, wr clientv3.WatchResponse, ok bool, what string) error {
	if ok && wr.Err() == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("ecs: %s watch ended: %v", what, wr.Err())
}
