package opclient

import (
	"context"
	"fmt"

	"github.com/ecskv/ecskv/ecs/ctlstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// CountKeys returns how many keys the cluster's partitions hold (each
// partition counted by the member that holds most, expired keys not yet
// swept included) and in how many partitions: `ecs restore` loads only
// into a cluster without any.
func CountKeys(ctx context.Context, cli *clientv3.Client, cluster string, dial AdminDialer) (keys uint64, parts int, err error) {
	if dial == nil {
		dial = DialAdmin
	}
	r, _, _, err := ctlstate.Load(ctx, cli, cluster)
	if err != nil {
		return 0, 0, err
	}
	if r == nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrNoCluster, cluster)
	}
	digests, _, err := collectDigests(ctx, r, nil, dial)
	if err != nil {
		return 0, 0, err
	}
	most := map[int]uint64{}
	for _, held := range digests {
		for p, d := range held {
			most[p] = max(most[p], d.GetKeys())
		}
	}
	for _, n := range most {
		if n > 0 {
			keys, parts = keys+n, parts+1
		}
	}
	return keys, parts, nil
}
