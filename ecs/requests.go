package ecs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The leader's side of the admin requests (`ecs add`, `ecs remove`): any
// host writes ecs/requests/<id>; the leader answers under ecs/results/<id>
// and deletes the request in the same transaction.

// maxAddCount bounds `ecs add -n K`.
const maxAddCount = 100

// resultTTL keeps answers around long enough for a slow client to read them.
const resultTTL = 3600 // seconds

// handleRequest answers a request at once, or queues a valid remove for the
// next epoch.
func (c *controller) handleRequest(ctx context.Context, key, value []byte) {
	id := strings.TrimPrefix(string(key), etcdkeys.RequestsPrefix(c.cfg.Cluster))
	req, err := etcdkeys.UnmarshalAdminRequest(value)
	if err != nil {
		c.answer(ctx, fail(id, "malformed request: %v", err))
		return
	}
	req.ID = id
	switch req.Kind {
	case etcdkeys.RequestAdd:
		c.answer(ctx, c.addServers(req))
	case etcdkeys.RequestRemove:
		if res, queue := c.checkRemove(req); !queue {
			c.answer(ctx, res)
		} else {
			c.removeQ = append(c.removeQ, req)
		}
	case etcdkeys.RequestRestart:
		c.answer(ctx, c.restartServer(req))
	default:
		c.answer(ctx, fail(id, "unknown request kind %q", req.Kind))
	}
}

func fail(id, format string, args ...any) etcdkeys.AdminResult {
	return etcdkeys.AdminResult{ID: id, Error: fmt.Sprintf(format, args...)}
}

// addServers launches req.Count more local kvservers, with ids and ports
// continuing after the ones this ECS knows. They join like any server.
func (c *controller) addServers(req etcdkeys.AdminRequest) etcdkeys.AdminResult {
	if req.Count < 1 || req.Count > maxAddCount {
		return fail(req.ID, "add: count must be in 1..%d, got %d", maxAddCount, req.Count)
	}
	if req.Name != "" && (req.Count != 1 || config.CheckServerID(req.Name) != nil) {
		return fail(req.ID, "add: a named server must be one, with an id of 1-63 letters, digits, '.', '_' or '-', got %d named %q", req.Count, req.Name)
	}
	if c.procs == nil || len(c.procs.IDs()) == 0 {
		return fail(req.ID, "add: the leader ECS launched no kvservers, so it cannot launch more; "+
			"start each new server by hand (kvserver --id ID --listen HOST:PORT --data-dir DIR --etcd-endpoints %s) "+
			"and it joins the cluster on its own", strings.Join(c.cli.Endpoints(), ","))
	}
	taken := func(id string) bool {
		_, inRing := c.ring.Server(id)
		_, registered := c.members[id]
		_, removed := c.state.Removed[id]
		return inRing || registered || removed
	}
	ids, err := c.procs.Add(req.Count, req.Name, taken)
	if len(ids) > 0 {
		c.events.add("servers launched", strings.Join(ids, ", "))
	}
	if err != nil {
		res := fail(req.ID, "add: %v", err)
		res.Servers = ids
		return res
	}
	c.lg.Info("launched servers on request", zap.Strings("ids", ids))
	return etcdkeys.AdminResult{ID: req.ID, OK: true, Servers: ids, Epoch: c.ring.Epoch}
}

// restartServer relaunches a local kvserver that has exited, on its data
// dir with its own flags; it rejoins like any returning server.
func (c *controller) restartServer(req etcdkeys.AdminRequest) etcdkeys.AdminResult {
	if c.procs == nil {
		return fail(req.ID, "restart: the leader ECS launched no kvservers; start %s again by hand with its own command line", req.Server)
	}
	pid, err := c.procs.Restart(req.Server)
	if err != nil {
		return fail(req.ID, "restart: %v", err)
	}
	c.events.add("server restarted", req.Server)
	c.lg.Info("restarted server on request", zap.String("id", req.Server), zap.Int("pid", pid))
	return etcdkeys.AdminResult{ID: req.ID, OK: true, Servers: []string{req.Server}, Epoch: c.ring.Epoch}
}

// checkRemove validates a remove against the current ring. It answers an
// unknown id or a removal that would leave fewer than R servers with an
// error, a repeated removal with success, and queues the rest.
func (c *controller) checkRemove(req etcdkeys.AdminRequest) (etcdkeys.AdminResult, bool) {
	s, ok := c.ring.Server(req.Server)
	if !ok {
		ids := make([]string, 0, len(c.ring.Servers))
		for _, s := range c.ring.Servers {
			ids = append(ids, s.ID)
		}
		sort.Strings(ids)
		return fail(req.ID, "remove: unknown server %q (servers: %s)", req.Server, strings.Join(ids, ", ")), false
	}
	if c.state.Removing[s.ID] {
		return etcdkeys.AdminResult{ID: req.ID, OK: true, Epoch: c.ring.Epoch}, false
	}
	if s.State == ringmeta.StateActive {
		left := 0
		for _, o := range c.ring.Servers {
			if o.ID != s.ID && o.State == ringmeta.StateActive && !c.state.Removing[o.ID] {
				left++
			}
		}
		if left < c.ring.Replicas {
			return fail(req.ID, "remove: %s cannot go: %d active servers would remain for %d replicas per partition; add a server first",
				s.ID, left, c.ring.Replicas), false
		}
	}
	return etcdkeys.AdminResult{}, true
}

// applyRemoves marks the queued servers leaving in next. The planner then
// moves their replicas away, and dropDrained takes them off the list once
// they hold nothing.
func (c *controller) applyRemoves(next *ringmeta.Ring, st *ctlstate.State, ep *epochChange) {
	for _, req := range c.removeQ {
		i := -1
		for j, s := range next.Servers {
			if s.ID == req.Server {
				i = j
			}
		}
		if i < 0 {
			ep.answered = append(ep.answered, fail(req.ID, "remove: server %q left the ring meanwhile", req.Server))
			continue
		}
		st.Removing[req.Server] = true
		if next.Servers[i].State == ringmeta.StateActive {
			next.Servers[i].State = ringmeta.StateLeaving
		}
		c.events.add("server leaving", req.Server)
		ep.answered = append(ep.answered, etcdkeys.AdminResult{ID: req.ID, OK: true})
		ep.changed = true
	}
}

// answer writes the result under a lease (so unread answers expire) and
// deletes the request, in one transaction. Best effort: an unanswered
// request is handled again by the next leader.
func (c *controller) answer(ctx context.Context, res etcdkeys.AdminResult) {
	cl := c.cfg.Cluster
	lease, err := c.cli.Grant(ctx, resultTTL)
	if err == nil {
		_, err = c.cli.Txn(ctx).Then(
			clientv3.OpPut(etcdkeys.Result(cl, res.ID), string(res.Marshal()), clientv3.WithLease(lease.ID)),
			clientv3.OpDelete(etcdkeys.Request(cl, res.ID)),
		).Commit()
	}
	if err != nil {
		c.lg.Warn("answer admin request", zap.String("request", res.ID), zap.Error(err))
	}
}
