package ecs

import (
	"context"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ringStore reads and writes the ring key. A write succeeds only while the
// ring is unchanged since it was read (mod revision) and this ECS still
// holds the leader key, so a deposed leader can never publish.
type ringStore struct {
	cli       *clientv3.Client
	key       string
	leaderKey string // election key of this ECS; "" skips the guard (tests)
	leaderRev int64
	rev       int64 // mod revision of the ring last read (ctlstate.Load) or written
}

func newRingStore(cli *clientv3.Client, cluster string) *ringStore {
	return &ringStore{cli: cli, key: etcdkeys.Ring(cluster)}
}

// publish writes r (whose epoch the caller already advanced) with the
// compare-and-swap described on ringStore. extra ops (the controller state,
// deletes of handled ready keys) commit in the same transaction or not at all.
func (rs *ringStore) publish(ctx context.Context, r *ringmeta.Ring, extra ...clientv3.Op) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("ecs: refusing to publish: %w", err)
	}
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	rev, err := rs.txn(ctx, append([]clientv3.Op{clientv3.OpPut(rs.key, string(data))}, extra...))
	if err != nil {
		return fmt.Errorf("ecs: publish ring epoch %d: %w", r.Epoch, err)
	}
	rs.rev = rev
	return nil
}

// commit writes ops (the controller state alone, say) under the same guards
// as publish while leaving the ring as it is.
func (rs *ringStore) commit(ctx context.Context, ops ...clientv3.Op) error {
	if _, err := rs.txn(ctx, ops); err != nil {
		return fmt.Errorf("ecs: write controller state: %w", err)
	}
	return nil
}

// txn runs ops if the ring is unchanged since rs.rev and this ECS still
// holds the leader key, and returns the transaction's revision.
func (rs *ringStore) txn(ctx context.Context, ops []clientv3.Op) (int64, error) {
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(rs.key), "=", rs.rev)}
	if rs.leaderKey != "" {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(rs.leaderKey), "=", rs.leaderRev))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := rs.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w (or %w)", ErrRingConflict, ErrNotLeader)
	}
	return resp.Header.Revision, nil
}
