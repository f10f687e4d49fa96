package opclient

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is what `ecs status --json` prints and the status page shows.
type Status struct {
	Cluster    string `json:"cluster"`
	Epoch      uint64 `json:"epoch"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Leader     string `json:"leader,omitempty"`
	// Auth means key operations need a login (fixed at cluster creation).
	Auth    bool           `json:"auth,omitempty"`
	Servers []ServerStatus `json:"servers"`
	// UnderReplicated counts partitions whose chain has fewer than R members.
	UnderReplicated int `json:"under_replicated"`
	// Unavailable counts partitions whose chain has no active member left.
	Unavailable int `json:"unavailable"`
	Learners    int `json:"learners"`
	// Unsynced counts partitions with a promoted member that has not yet
	// reported holding every acknowledged write; no move starts there.
	Unsynced int `json:"unsynced"`
	// Moves is the rebalancing progress the leader published with the ring.
	Moves  MoveStatus `json:"moves"`
	Events []Event    `json:"events,omitempty"`

	ring *ringmeta.Ring // the ring read, for the status page's picture
}

// Ring is the ring the status was read from (nil for a status not read
// by ReadStatus); the status page draws it.
func (s *Status) Ring() *ringmeta.Ring { return s.ring }

// Event is one entry of the recent-events list (status page, `ecs status`).
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// MoveStatus is the progress of re-replication and rebalancing: partitions
// whose chain is not yet what the planner wants.
type MoveStatus struct {
	Pending    int    `json:"pending"`
	Done       int    `json:"done"`
	Total      int    `json:"total"`
	InProgress int    `json:"in_progress"`           // learners copying now
	StartEpoch uint64 `json:"start_epoch,omitempty"` // first epoch of the round these counts are of
	// CopiedKeys and CopiedBytes are what learners received this round,
	// CopyingBytes the part of it in copies not yet finished; BytesLeft
	// estimates what is still to copy.
	CopiedKeys   uint64 `json:"copied_keys"`
	CopiedBytes  uint64 `json:"copied_bytes"`
	CopyingBytes uint64 `json:"copying_bytes"`
	BytesLeft    uint64 `json:"bytes_left"`
	KeysMoved    uint64 `json:"keys_moved"`
	// ETASeconds estimates the time left from the rate so far: 0 when
	// nothing is pending, -1 when no partition finished yet.
	ETASeconds float64 `json:"eta_seconds"`
}

// ServerStatus is one server's line.
type ServerStatus struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Zone    string `json:"zone,omitempty"`
	State   string `json:"state"`
	Metrics string `json:"metrics"`
	PID     int    `json:"pid,omitempty"`
	Epoch   uint64 `json:"epoch"` // epoch the server last reported applying
	// Lag is how many epochs the server's report is behind the ring's.
	Lag uint64 `json:"lag_epochs"`
	// Incarnation changes with every start of the server process.
	Incarnation uint64         `json:"incarnation,omitempty"`
	Roles       map[string]int `json:"partitions"`
	Learning    int            `json:"learning"` // partitions it is copying as a learner
}

// ReadStatus assembles the cluster's status from etcd alone, so it works
// from any host and whether or not an ECS runs.
func ReadStatus(ctx context.Context, cli *clientv3.Client, cluster string) (*Status, error) {
	r, _, cst, err := ctlstate.Load(ctx, cli, cluster)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoCluster, cluster)
	}
	resp, err := cli.Get(ctx, etcdkeys.ServersPrefix(cluster), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("ecs: read members: %w", err)
	}
	members := map[string]etcdkeys.Member{}
	for _, kv := range resp.Kvs {
		if m, err := etcdkeys.UnmarshalMember(kv.Value); err == nil {
			members[m.ID] = m
		}
	}
	st := statusOf(r, members)
	st.Cluster = cluster
	st.ring = r
	st.Moves = moveStatus(cst.Moves)
	st.Moves.addCopies(cst.Moves, ctlstate.SumCopies(members), r)
	st.Unsynced = len(cst.Unsynced)
	for i, s := range st.Servers {
		if _, ok := cst.Removed[s.ID]; ok && s.State == "joining" {
			st.Servers[i].State = "removed"
		}
	}
	if lr, err := cli.Get(ctx, etcdkeys.LeaderPrefix(cluster), clientv3.WithFirstCreate()...); err == nil && len(lr.Kvs) > 0 {
		st.Leader = string(lr.Kvs[0].Value)
	}
	return st, nil
}

func statusOf(r *ringmeta.Ring, members map[string]etcdkeys.Member) *Status {
	st := &Status{Epoch: r.Epoch, Partitions: r.Partitions, Replicas: r.Replicas, Auth: r.Auth}
	roles := map[string]map[string]int{}
	active := map[string]bool{}
	learning := map[string]int{}
	for _, s := range r.Servers {
		roles[s.ID] = map[string]int{"head": 0, "middle": 0, "tail": 0}
		active[s.ID] = s.State == ringmeta.StateActive
	}
	for _, c := range r.Chains {
		if len(c.Members) < r.Replicas {
			st.UnderReplicated++
		}
		if !slices.ContainsFunc(c.Members, func(id string) bool { return active[id] }) {
			st.Unavailable++
		}
		if c.Learner != "" {
			st.Learners++
			learning[c.Learner]++
		}
		for i, id := range c.Members {
			if i == 0 {
				roles[id]["head"]++
			}
			if i == len(c.Members)-1 {
				roles[id]["tail"]++
			}
			if i > 0 && i < len(c.Members)-1 {
				roles[id]["middle"]++
			}
		}
	}
	for _, s := range r.Servers {
		ss := ServerStatus{ID: s.ID, Address: s.Addr, Zone: s.Zone, State: string(s.State), Metrics: s.Metrics,
			Roles: roles[s.ID], Learning: learning[s.ID]}
		if m, ok := members[s.ID]; ok {
			ss.PID, ss.Epoch, ss.Incarnation = m.PID, m.Epoch, m.Incarnation
		}
		st.Servers = append(st.Servers, ss)
	}
	for id, m := range members {
		if _, ok := r.Server(id); !ok {
			st.Servers = append(st.Servers, ServerStatus{ID: id, Address: m.Addr, Zone: m.Zone, State: "joining",
				Metrics: m.Metrics, PID: m.PID, Epoch: m.Epoch, Incarnation: m.Incarnation})
		}
	}
	for i := range st.Servers {
		if e := st.Servers[i].Epoch; e > 0 && e < st.Epoch {
			st.Servers[i].Lag = st.Epoch - e
		}
	}
	slices.SortFunc(st.Servers, func(a, b ServerStatus) int { return CompareIDs(a.ID, b.ID) })
	return st
}

// CompareIDs orders server ids naturally: s2 before s10.
func CompareIDs(a, b string) int {
	pa, na := splitID(a)
	pb, nb := splitID(b)
	if pa != pb || na < 0 || nb < 0 {
		return strings.Compare(a, b)
	}
	return cmp.Compare(na, nb)
}

// splitID splits an id into its text and its trailing number (-1: none).
func splitID(id string) (string, int) {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(id[i:])
	if err != nil || i == len(id) {
		return id, -1
	}
	return id[:i], n
}

// addCopies fills in what the round copied and an estimate of the bytes
// it has left: each pending partition as large as the round's finished
// ones were on average, or, before any finished, as an average replica on
// disk.
func (m *MoveStatus) addCopies(pr ctlstate.Progress, cs ctlstate.Copies, r *ringmeta.Ring) {
	if m.Total == 0 {
		return
	}
	sub := func(a, b uint64) uint64 { return a - min(a, b) } // a server's restart resets its counters
	m.CopiedKeys, m.CopiedBytes, m.CopyingBytes = sub(cs.Keys, pr.BaseCopiedKeys), sub(cs.Bytes, pr.BaseCopiedBytes), cs.Copying
	per := 0.0
	if finished := sub(m.CopiedBytes, m.CopyingBytes); m.Done > 0 && finished > 0 {
		per = float64(finished) / float64(m.Done)
	} else if replicas := r.Partitions * r.Replicas; replicas > 0 {
		per = float64(cs.Disk) / float64(replicas)
	}
	m.BytesLeft = uint64(max(0, per*float64(m.Pending)-float64(m.CopyingBytes)))
}

func moveStatus(pr ctlstate.Progress) MoveStatus {
	return MoveStatus{Pending: pr.Pending, Done: pr.Done, Total: pr.Total, InProgress: pr.InFlight, KeysMoved: pr.KeysMoved,
		StartEpoch: pr.StartEpoch, ETASeconds: pr.ETASeconds()}
}
