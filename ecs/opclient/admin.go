package opclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The operator's side of the admin requests: `ecs add` and `ecs remove` run
// on any host, talk only to etcd, and wait for the leader to act.

// pollInterval paces the admin commands' polling of etcd.
const pollInterval = 200 * time.Millisecond

// Submit writes an admin request for the leader ECS and returns its id. It
// fails at once when the cluster does not exist or no ECS leads it, and for
// a remove of a server the ring does not list (nothing is written then).
func Submit(ctx context.Context, cli *clientv3.Client, cluster string, req etcdkeys.AdminRequest) (string, error) {
	r, _, _, err := ctlstate.Load(ctx, cli, cluster)
	if err != nil {
		return "", err
	}
	if r == nil {
		return "", fmt.Errorf("%w: %q", ErrNoCluster, cluster)
	}
	if req.Kind == etcdkeys.RequestRemove || req.Kind == etcdkeys.RequestRestart {
		if _, ok := r.Server(req.Server); !ok {
			return "", fmt.Errorf("%w: %q is not in cluster %q", ErrUnknownServer, req.Server, cluster)
		}
	}
	lr, err := cli.Get(ctx, etcdkeys.LeaderPrefix(cluster), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return "", fmt.Errorf("ecs: find leader: %w", err)
	}
	if lr.Count == 0 {
		return "", fmt.Errorf("%w for cluster %q: start one with `ecs start`", ErrNoLeader, cluster)
	}
	req.ID = fmt.Sprintf("%d-%08x", time.Now().UnixNano(), rand.Uint32())
	req.UnixMillis = time.Now().UnixMilli()
	if _, err := cli.Put(ctx, etcdkeys.Request(cluster, req.ID), string(req.Marshal())); err != nil {
		return "", fmt.Errorf("ecs: write request: %w", err)
	}
	return req.ID, nil
}

// WaitResult waits for the leader's answer to request id, deletes it and
// returns it; a refused request comes back as an error.
func WaitResult(ctx context.Context, cli *clientv3.Client, cluster, id string) (etcdkeys.AdminResult, error) {
	key := etcdkeys.Result(cluster, id)
	for {
		resp, err := cli.Get(ctx, key)
		if err == nil && len(resp.Kvs) > 0 {
			res, err := etcdkeys.UnmarshalAdminResult(resp.Kvs[0].Value)
			_, _ = cli.Delete(ctx, key)
			if err != nil {
				return res, fmt.Errorf("ecs: malformed answer: %w", err)
			}
			if !res.OK {
				return res, fmt.Errorf("%w: %s", ErrRefused, res.Error)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			_, _ = cli.Delete(context.Background(), etcdkeys.Request(cluster, id))
			return etcdkeys.AdminResult{}, fmt.Errorf("%w: the leader ECS did not answer request %s", ErrTimeout, id)
		case <-time.After(pollInterval):
		}
	}
}

// WaitBalanced polls the cluster's status until done(st) holds and the
// cluster is balanced (Status.Balanced), calling progress after every poll.
// On timeout it returns the last status with an error naming what is left.
func WaitBalanced(ctx context.Context, cli *clientv3.Client, cluster string, done func(*Status) bool, progress func(*Status)) (*Status, error) {
	var last *Status
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := ReadStatus(rctx, cli, cluster)
		cancel()
		if err == nil {
			last = st
			if progress != nil {
				progress(st)
			}
			if done(st) && st.Balanced() {
				return st, nil
			}
		} else if errors.Is(err, ErrNoCluster) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("%w: no status: %v", ErrTimeout, err)
			}
			return last, fmt.Errorf("%w: %s", ErrTimeout, last.Moves.Summary(last))
		case <-time.After(pollInterval):
		}
	}
}

// Balanced reports whether no partition is under-replicated, no learner is
// copying, no promoted member is still syncing and no move is pending.
func (s *Status) Balanced() bool {
	return s.UnderReplicated == 0 && s.Learners == 0 && s.Unsynced == 0 && s.Moves.Pending == 0
}

// Summary is a one-line account of the rebalancing progress.
// Since returns the moves of a round that began at epoch or later; an
// earlier, finished round's counts are not the caller's, so they read 0.
func (m MoveStatus) Since(epoch uint64) MoveStatus {
	if m.Pending == 0 && m.StartEpoch != 0 && m.StartEpoch < epoch {
		return MoveStatus{}
	}
	return m
}

func (m MoveStatus) Summary(s *Status) string {
	eta := "unknown"
	switch {
	case m.Pending == 0:
		eta = "0s"
	case m.ETASeconds >= 0:
		eta = (time.Duration(m.ETASeconds * float64(time.Second))).Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%d/%d partitions moved, %d keys, %d copying, %d under-replicated, ETA %s",
		m.Done, m.Total, m.KeysMoved, s.Learners, s.UnderReplicated, eta)
}
