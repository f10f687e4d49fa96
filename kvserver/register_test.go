package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memberEpoch returns the epoch in id's membership record.
func (c *tcluster) memberEpoch(id string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, etcdkeys.Server(c.name, id))
	require.NoError(c.t, err)
	require.Len(c.t, resp.Kvs, 1)
	m, err := etcdkeys.UnmarshalMember(resp.Kvs[0].Value)
	require.NoError(c.t, err)
	return m.Epoch
}

// TestEpochReportedOnceAdopted: a server routes by a new ring as soon as it
// stored it, but reports its epoch to the ECS, and grants leases for it,
// only once every partition took on its chains (here one partition's
// adoption is held up by its lock).
func TestEpochReportedOnceAdopted(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == 1 }, "epoch 1 not reported")
	ps := c.srv("s2").parts.get(7)
	ps.mu.Lock()
	locked := true
	defer func() {
		if locked {
			ps.mu.Unlock()
		}
	}()
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[7].Members = []string{"s1", "s2"} })
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.srv("s2").appliedEpoch() == r.Epoch }, "ring not stored")
	time.Sleep(200 * time.Millisecond) // several rounds of the registration loop
	assert.Equal(t, uint64(1), c.memberEpoch("s2"), "epoch reported before it was adopted")
	resp := c.srv("s2").grantLease(&kvpb.LeaseRequest{From: "s1", Epoch: r.Epoch})
	assert.False(t, resp.Granted, "lease granted for an epoch not adopted")
	assert.Equal(t, uint64(1), resp.Epoch)

	ps.mu.Unlock()
	locked = false
	c.waitEpoch(r.Epoch, "s2")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == r.Epoch }, "adopted epoch not reported")
}
