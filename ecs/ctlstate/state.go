package ctlstate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/core"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// State is the leader's own record. It is written in the same etcd
// transaction as every ring the leader publishes, so a new leader after a
// failover, and `ecs status` on any host, read a plan that matches the ring
// (DESIGN §3: all ECS state is in etcd).
type State struct {
	Epoch uint64 `json:"epoch"` // ring epoch it was written with
	// Leaves lists, per partition, the members planned to leave once the
	// partition's learner is promoted.
	Leaves map[int][]string `json:"leaves,omitempty"`
	// Removing holds the servers `ecs remove` drains; each leaves the ring's
	// server list once it holds nothing.
	Removing map[string]bool `json:"removing,omitempty"`
	// Removed maps servers removed from the ring to the incarnation they had
	// then: a server that keeps running is not admitted again until it
	// restarts (a new incarnation) or deregisters.
	Removed map[string]uint64 `json:"removed,omitempty"`
	// Unsynced lists, per partition, the members that may lack writes
	// committed before they joined (promoted learners that have not
	// reported synced/<id>/<p>), each with the chain version it was marked
	// at. They live here, not in the leader's memory, so that a new leader
	// never makes such a member head or sole member (ecs/core).
	Unsynced map[int][]core.Mark `json:"unsynced,omitempty"`
	Moves    Progress            `json:"moves"`
}

// Progress is the progress of the current (or last) rebalancing round. A
// round starts when some partition's chain differs from the planner's
// target and ends when none does.
type Progress struct {
	Pending  int `json:"pending"`   // partitions whose chain is not yet its target
	Done     int `json:"done"`      // partitions that reached their target this round
	Total    int `json:"total"`     // done + pending
	InFlight int `json:"in_flight"` // learners copying now
	// KeysMoved adds up, for every promoted learner, the keys its partition
	// held (from the kvserver's Digest).
	KeysMoved     uint64 `json:"keys_moved"`
	StartedUnixMs int64  `json:"started_unix_ms,omitempty"`
	StartEpoch    uint64 `json:"start_epoch,omitempty"` // the first epoch of the round (0: unknown)
	// BaseCopiedKeys and BaseCopiedBytes are the servers' copy counters
	// (etcdkeys.Member) summed when the round began: what the round copied
	// is the sum now less these.
	BaseCopiedKeys  uint64 `json:"base_copied_keys,omitempty"`
	BaseCopiedBytes uint64 `json:"base_copied_bytes,omitempty"`
	UpdatedUnixMs   int64  `json:"updated_unix_ms,omitempty"` // when done last grew
}

// New returns an empty state with its maps made.
func New() State {
	return State{Leaves: map[int][]string{}, Removing: map[string]bool{}, Removed: map[string]uint64{}, Unsynced: map[int][]core.Mark{}}
}

// Clone copies the maps so the controller can build the next state without
// touching the published one.
func (s State) Clone() State {
	c := s
	c.Leaves = make(map[int][]string, len(s.Leaves))
	for p, l := range s.Leaves {
		c.Leaves[p] = append([]string(nil), l...)
	}
	c.Removing = make(map[string]bool, len(s.Removing))
	for id, v := range s.Removing {
		c.Removing[id] = v
	}
	c.Removed = make(map[string]uint64, len(s.Removed))
	for id, v := range s.Removed {
		c.Removed[id] = v
	}
	c.Unsynced = make(map[int][]core.Mark, len(s.Unsynced))
	for p, m := range s.Unsynced {
		c.Unsynced[p] = slices.Clone(m)
	}
	return c
}

// Marshal encodes the state as it is stored in etcd.
func (s State) Marshal() string {
	b, _ := json.Marshal(s) // cannot fail: maps of plain values
	return string(b)
}

// Load reads the ring and the controller state in one transaction, so
// they belong to the same epoch. The ring is nil when the cluster has none;
// the state is empty when no leader wrote one yet.
func Load(ctx context.Context, cli *clientv3.Client, cluster string) (*ringmeta.Ring, int64, State, error) {
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpGet(etcdkeys.Ring(cluster)),
		clientv3.OpGet(etcdkeys.ControllerState(cluster)),
	).Commit()
	if err != nil {
		return nil, 0, State{}, fmt.Errorf("ecs: read ring: %w", err)
	}
	st := New()
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &st); err != nil {
			return nil, 0, State{}, fmt.Errorf("ecs: controller state: %w", err)
		}
		if st.Leaves == nil || st.Removing == nil || st.Removed == nil || st.Unsynced == nil {
			st = st.Clone()
		}
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, 0, st, nil
	}
	r, err := ringmeta.Unmarshal(kvs[0].Value)
	if err != nil {
		return nil, 0, State{}, err
	}
	return r, kvs[0].ModRevision, st, nil
}

// Advance moves the round forward from the partitions pending before (nil:
// unknown, after a leader change) to those pending now.
func (pr Progress) Advance(before, now map[int]struct{}, inFlight int, t time.Time) (Progress, int) {
	finished := 0
	switch {
	case before == nil && pr.Pending == 0 && len(now) > 0, before != nil && len(before) == 0 && len(now) > 0:
		pr = Progress{StartedUnixMs: t.UnixMilli()} // a new round
	case before != nil:
		for p := range before {
			if _, ok := now[p]; !ok {
				finished++
			}
		}
	}
	if finished > 0 {
		pr.Done += finished
		pr.UpdatedUnixMs = t.UnixMilli()
	}
	pr.Pending, pr.InFlight = len(now), inFlight
	pr.Total = pr.Done + pr.Pending
	return pr, finished
}

// ETA estimates the time left from the rate so far; -1 when unknown (no
// partition finished yet), 0 when nothing is pending.
func (pr Progress) ETA() time.Duration {
	if pr.Pending == 0 {
		return 0
	}
	if pr.Done == 0 || pr.UpdatedUnixMs <= pr.StartedUnixMs {
		return -1
	}
	per := time.Duration(pr.UpdatedUnixMs-pr.StartedUnixMs) * time.Millisecond / time.Duration(pr.Done)
	return per * time.Duration(pr.Pending)
}

// ETASeconds is ETA in seconds as `ecs status` shows it: -1 when unknown.
func (pr Progress) ETASeconds() float64 {
	if eta := pr.ETA(); eta >= 0 {
		return eta.Seconds()
	}
	return -1
}

// Copies adds up the servers' copy counters (etcdkeys.Member): the
// controller records them when a round begins (Progress.BaseCopiedKeys),
// `ecs status` subtracts that base to show what the round copied.
type Copies struct{ Keys, Bytes, Copying, Disk uint64 }

// SumCopies adds up the copy counters of members.
func SumCopies(members map[string]etcdkeys.Member) Copies {
	var cs Copies
	for _, m := range members {
		cs.Keys += m.CopiedKeys
		cs.Bytes += m.CopiedBytes
		cs.Copying += m.CopyingBytes
		cs.Disk += m.DiskBytes
	}
	return cs
}
