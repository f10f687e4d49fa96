package ecs

import (
	"context"
	"fmt"
	"slices"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is what `ecs status --json` prints and the status page shows.
type Status struct {
	Cluster    string         `json:"cluster"`
	Epoch      uint64         `json:"epoch"`
	Partitions int            `json:"partitions"`
	Replicas   int            `json:"replicas"`
	Leader     string         `json:"leader,omitempty"`
	Servers    []ServerStatus `json:"servers"`
	// UnderReplicated counts partitions whose chain has fewer than R members.
	UnderReplicated int `json:"under_replicated"`
	// Unavailable counts partitions whose chain has no active member left.
	Unavailable int     `json:"unavailable"`
	Learners    int     `json:"learners"`
	Events      []Event `json:"events,omitempty"`
}

// ServerStatus is one server's line.
type ServerStatus struct {
	ID      string         `json:"id"`
	Address string         `json:"address"`
	Zone    string         `json:"zone,omitempty"`
	State   string         `json:"state"`
	Metrics string         `json:"metrics"`
	PID     int            `json:"pid,omitempty"`
	Epoch   uint64         `json:"epoch"` // epoch the server last reported applying
	Roles   map[string]int `json:"partitions"`
}

// ReadStatus assembles the cluster's status from etcd alone, so it works
// from any host and whether or not an ECS runs.
func ReadStatus(ctx context.Context, cli *clientv3.Client, cluster string) (*Status, error) {
	rs := newRingStore(cli, cluster)
	r, err := rs.load(ctx)
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
	if lr, err := cli.Get(ctx, etcdkeys.LeaderPrefix(cluster), clientv3.WithFirstCreate()...); err == nil && len(lr.Kvs) > 0 {
		st.Leader = string(lr.Kvs[0].Value)
	}
	return st, nil
}

func statusOf(r *ringmeta.Ring, members map[string]etcdkeys.Member) *Status {
	st := &Status{Epoch: r.Epoch, Partitions: r.Partitions, Replicas: r.Replicas}
	roles := map[string]map[string]int{}
	active := map[string]bool{}
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
		ss := ServerStatus{ID: s.ID, Address: s.Addr, Zone: s.Zone, State: string(s.State), Metrics: s.Metrics, Roles: roles[s.ID]}
		if m, ok := members[s.ID]; ok {
			ss.PID, ss.Epoch = m.PID, m.Epoch
		}
		st.Servers = append(st.Servers, ss)
	}
	for id, m := range members {
		if _, ok := r.Server(id); !ok {
			st.Servers = append(st.Servers, ServerStatus{ID: id, Address: m.Addr, Zone: m.Zone, State: "joining", Metrics: m.Metrics, PID: m.PID, Epoch: m.Epoch})
		}
	}
	return st
}
