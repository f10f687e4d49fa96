package ecs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/hashring"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/core"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	"github.com/ecskv/ecskv/ecs/opclient"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// settleTimeout bounds how long a partition's next planned step waits for
// its servers to report applying its last change (see unsettled). That wait
// only paces the steps (a learner set right after a failover would find a
// tail that does not know the new chain yet and retry); safety does not
// depend on it: a promoted tail that may lack writes is marked unsynced in
// etcd, and its partition waits for its synced report however long it takes
// (ecs/core).
const settleTimeout = 10 * time.Second

// minEpochGap spaces epochs that only move data (promotions, learners,
// removals after a move): each epoch is a ring every server parses, and
// batching moves into fewer epochs makes rebalancing faster, not slower.
// Failovers and membership changes never wait.
const minEpochGap = 20 * time.Millisecond

// controller is the leader's control loop. One goroutine (run) owns every
// field below the blank line; the detector's probe loops and the etcd
// watches only send it events.
type controller struct {
	cfg    config.ECS
	lg     *zap.Logger
	cli    *clientv3.Client
	rings  *ringStore
	expect []string // servers this ECS launched; readiness waits for them
	// layoutWaits is how many servers were active when the first layout
	// last waited for more (so each count is reported once).
	layoutWaits int
	events      *eventLog
	gauges      *ecsMetrics
	procs       procManager          // local kvservers; nil when this ECS launches none
	dial        dialFunc             // health probes; nil dials gRPC
	adminDial   opclient.AdminDialer // Digest calls sizing moved partitions; nil dials gRPC
	onReady     func(*ringmeta.Ring)
	wg          sync.WaitGroup // measure goroutines; joined when run returns
	sizes       chan uint64    // keys moved, from measure

	ring        *ringmeta.Ring
	state       ctlstate.State
	members     map[string]etcdkeys.Member
	seen        map[string]bool        // member keys seen since this leader started
	incarnation map[string]uint64      // last incarnation seen per server, kept after its key goes
	suspect     map[string]time.Time   // when a failure or restart was first observed
	restarted   map[string]bool        // new incarnation while the old one may still be in chains
	health      map[string]healthEvent // latest probe verdict per server
	ready       map[partKey]string     // ready/<id>/<p> keys and their values
	synced      map[partKey]string     // synced/<id>/<p> keys and their values
	removeQ     []etcdkeys.AdminRequest
	pendingSet  map[int]struct{} // nil until the first plan after taking over
	targets     targetCache
	changed     map[int]changeMark // partitions changed recently, until their servers report it
	lastPublish time.Time
	holdUntil   time.Time // when a held-back epoch of data moves is due; zero if none
	det         *detector
	// isolatedLogged: the last failover pass found the ECS cut from most
	// servers (detector.isolated) and said so.
	isolatedLogged bool
	started        time.Time
}

// procManager is the local launcher as the controller uses it.
type procManager interface {
	IDs() []string
	Add(k int, name string, taken func(id string) bool) ([]string, error)
	StopServer(id string) bool
	Restart(id string) (pid int, err error)
}

// run loads the ring, follows membership, probes, ready keys and admin
// requests, and reconciles until ctx ends or a watch fails.
func (c *controller) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.wg.Wait()
	}()
	c.started, c.sizes = time.Now(), make(chan uint64, 16)
	c.members, c.seen, c.incarnation = map[string]etcdkeys.Member{}, map[string]bool{}, map[string]uint64{}
	c.suspect, c.restarted, c.health = map[string]time.Time{}, map[string]bool{}, map[string]healthEvent{}
	c.ready, c.synced, c.changed = map[partKey]string{}, map[partKey]string{}, map[int]changeMark{}
	if err := c.loadOrCreate(ctx); err != nil {
		return err
	}
	c.det = newDetector(c.lg, c.cfg.ProbeInterval, c.cfg.ProbeTimeout, c.cfg.ProbeFailures, c.dial)
	defer c.det.stop()
	w, err := c.watchAll(ctx)
	if err != nil {
		return err
	}
	w.tick = time.NewTicker(max(c.cfg.ProbeInterval, 50*time.Millisecond))
	defer w.tick.Stop()
	for {
		if err := c.step(ctx, w); err != nil {
			if ctx.Err() != nil {
				return nil // stopping: a publish or watch cut short is no failure
			}
			return err
		}
	}
}

// loadOrCreate reads the ring and the controller state, creating the empty
// first epoch (P, R and the limits, fixed from now on) for a new cluster.
func (c *controller) loadOrCreate(ctx context.Context) error {
	r, rev, st, err := ctlstate.Load(ctx, c.cli, c.cfg.Cluster)
	if err != nil {
		return err
	}
	c.rings.rev = rev
	c.state, c.pendingSet = st, nil
	if r == nil {
		r = &ringmeta.Ring{
			Epoch: 1, Partitions: c.cfg.Partitions, Replicas: c.cfg.Replicas,
			Limits: ringmeta.Limits{MaxKeyBytes: c.cfg.MaxKeyBytes, MaxValueBytes: c.cfg.MaxValueBytes},
			Auth:   c.cfg.AuthOn(),
		}
		st.Epoch = r.Epoch
		if err := c.rings.publish(ctx, r, clientv3.OpPut(etcdkeys.ControllerState(c.cfg.Cluster), st.Marshal())); err != nil {
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

// epochChange collects what one reconcile pass changes; it all goes out in
// one epoch. Each chain changes in at most one step of ecs/core, which
// bumps its version once: later steps skip touched partitions.
type epochChange struct {
	changed      bool
	stateChanged bool         // the state changed without the ring (a mark cleared)
	touched      map[int]bool // partitions whose chain changed in this epoch
	failed       []failure
	readyDel     []partKey
	syncedDel    []partKey
	promoted     []partKey
	removed      []string // servers dropped from the ring's list
	answered     []etcdkeys.AdminResult
	pending      map[int]struct{} // partitions not at their target after this epoch
	finished     int              // partitions that reached it in this epoch
}

// touch records that partition p's chain changed (its version was bumped).
func (e *epochChange) touch(p int) {
	e.touched[p] = true
	e.changed = true
}

// settledMembership reports whether the planner may run: every active server
// of the ring has registered, or the startup grace (one lease TTL) is over
// and failover has marked the absent ones down. Planning earlier, while the
// servers of a restarting cluster register one by one, would move replicas
// off servers that are merely a moment late.
func (c *controller) settledMembership(next *ringmeta.Ring) bool {
	if time.Since(c.started) >= c.cfg.LeaseTTL {
		return true
	}
	for _, s := range next.Servers {
		if _, ok := c.members[s.ID]; !ok && s.State == ringmeta.StateActive {
			return false
		}
	}
	return true
}

// reconcile builds the next epoch from everything observed and publishes it
// when it differs from the current one.
func (c *controller) reconcile(ctx context.Context) error {
	next, st := c.ring.Clone(), c.state.Clone()
	ep := &epochChange{touched: map[int]bool{}}
	c.admit(next, &st, ep)
	c.clearSynced(next, &st, ep)
	c.failover(next, &st, ep)
	c.applyRemoves(next, &st, ep)
	urgent := ep.changed // membership changed; what follows only moves data
	c.promote(next, &st, ep)
	if len(next.Chains) == 0 {
		if err := c.layout(next, ep); err != nil {
			return err
		}
	} else if c.settledMembership(next) {
		if err := c.planStep(next, &st, ep); err != nil {
			return err
		}
	}
	c.dropDrained(next, &st, ep)
	c.holdUntil = time.Time{}
	if ep.changed && !urgent && time.Since(c.lastPublish) < minEpochGap {
		// Data moves wait a moment, so that promotions and new learners
		// arriving close together share one epoch.
		c.holdUntil = c.lastPublish.Add(minEpochGap)
	} else if ep.changed {
		if err := c.publish(ctx, next, st, ep); err != nil {
			return err
		}
	} else if ep.stateChanged {
		if err := c.writeState(ctx, st, ep); err != nil {
			return err
		}
	} else {
		c.deleteStale(ctx, ep)
	}
	c.checkReady()
	c.det.sync(ctx, c.probeTargets())
	return nil
}

// publish writes next with the state and the handled ready and synced
// keys' deletion in one transaction, then records what the epoch did.
func (c *controller) publish(ctx context.Context, next *ringmeta.Ring, st ctlstate.State, ep *epochChange) error {
	next.Epoch = c.ring.Epoch + 1
	st.Epoch = next.Epoch
	ops := append([]clientv3.Op{clientv3.OpPut(etcdkeys.ControllerState(c.cfg.Cluster), st.Marshal())}, c.keyDeletes(ep)...)
	if err := c.rings.publish(ctx, next, ops...); err != nil {
		if errors.Is(err, ErrRingConflict) {
			c.lg.Warn("ring changed under us; reloading", zap.Error(err))
			return c.loadOrCreate(ctx) // someone else wrote; start from theirs
		}
		return err
	}
	now := time.Now()
	c.recordState(st, ep)
	c.ring, c.lastPublish = next, now
	for p := range ep.touched {
		c.changed[p] = changeMark{epoch: next.Epoch, at: now}
	}
	c.forgetKeys(ep)
	c.gauges.ringPublished(next)
	c.lg.Info("ring published", zap.Uint64("epoch", next.Epoch), zap.Int("servers", len(next.Servers)),
		zap.Int("chains-changed", len(ep.touched)), zap.Int("moves-pending", st.Moves.Pending))
	c.afterPublish(ctx, next, ep, now)
	return nil
}

// recordState takes st as the state in etcd, with the progress it carries.
func (c *controller) recordState(st ctlstate.State, ep *epochChange) {
	if ep.pending != nil {
		c.noteRound(c.state.Moves, st.Moves, ep.finished)
		c.pendingSet = ep.pending
	}
	c.state = st
	c.gauges.movesPublished(st.Moves)
}

// afterPublish records failovers and removals and answers requests that
// took effect in the epoch just published.
func (c *controller) afterPublish(ctx context.Context, next *ringmeta.Ring, ep *epochChange, now time.Time) {
	for _, f := range ep.failed {
		delete(c.restarted, f.id)
		delete(c.suspect, f.id)
		took := now.Sub(f.at)
		c.gauges.failovers.WithLabelValues(f.cause).Inc()
		c.gauges.failoverSeconds.Observe(took.Seconds())
		c.events.add("failover", fmt.Sprintf("%s %s (%s): left %d chains in epoch %d, %v after detection",
			f.id, f.what(), f.cause, f.chains, next.Epoch, took.Round(time.Millisecond)))
		c.lg.Warn("failover published", zap.String("id", f.id), zap.String("cause", f.cause),
			zap.Int("chains", f.chains), zap.Uint64("epoch", next.Epoch), zap.Duration("took", took))
	}
	for _, id := range ep.removed {
		stopped := c.procs != nil && c.procs.StopServer(id)
		c.events.add("server removed", fmt.Sprintf("%s (process stopped: %v)", id, stopped))
	}
	c.measure(ctx, ep.promoted)
	for _, res := range ep.answered {
		res.Epoch = next.Epoch
		c.answer(ctx, res)
	}
	if len(ep.answered) > 0 {
		c.removeQ = nil
	}
}

// layout gives a ring without chains its first placement once enough servers
// are active: every server this ECS launched, else R servers.
func (c *controller) layout(next *ringmeta.Ring, ep *epochChange) error {
	var cands []hashring.Server
	for _, s := range next.Servers {
		if s.State == ringmeta.StateActive {
			cands = append(cands, hashring.Server{ID: s.ID, Zone: s.Zone})
		}
	}
	need := c.cfg.InitialServers
	if need == 0 {
		need = len(c.expect)
	}
	if need == 0 {
		need = next.Replicas
	}
	if len(cands) == 0 || len(cands) < need {
		if len(cands) != c.layoutWaits {
			c.layoutWaits = len(cands)
			c.events.add("layout waits", fmt.Sprintf("%d of %d servers active", len(cands), need))
			c.lg.Info("first layout waits for servers", zap.Int("active", len(cands)), zap.Int("need", need))
		}
		return nil
	}
	chains, err := hashring.Initial(cands, next.Partitions, next.Replicas)
	if err != nil {
		return fmt.Errorf("ecs: initial layout: %w", err)
	}
	next.Chains = make([]ringmeta.Chain, len(chains))
	for p, members := range chains {
		next.Chains[p] = ringmeta.Chain{Members: members, Version: 1}
	}
	// Heads and tails balanced from the start: the first ring needs no
	// reorders (each would be a chain change of its own).
	for p, order := range core.PlanRoles(next.Chains, func(int) bool { return true }, len(chains)) {
		next.Chains[p].Members = order
	}
	ep.changed = true
	c.events.add("layout created", fmt.Sprintf("%d partitions over %d servers", next.Partitions, len(cands)))
	return nil
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

// probeTargets lists the ring's servers that are registered, by id.
func (c *controller) probeTargets() []probeTarget {
	var ts []probeTarget
	for _, s := range c.ring.Servers {
		if m, ok := c.members[s.ID]; ok {
			ts = append(ts, probeTarget{id: s.ID, addr: m.Addr, incarnation: m.Incarnation})
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].id < ts[j].id })
	return ts
}
