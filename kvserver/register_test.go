package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
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
// stored it, but reports its epoch to the ECS only once the chain protocol
// took on its chains (here held up by the protocol's lock).
func TestEpochReportedOnceAdopted(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == 1 }, "epoch 1 not reported")
	core := c.srv("s2").core
	core.mu.Lock()
	locked := true
	defer func() {
		if locked {
			core.mu.Unlock()
		}
	}()
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[7].Members = []string{"s1", "s2"} })
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		cur := c.srv("s2").ring.Load()
		return cur != nil && cur.Epoch == r.Epoch
	}, "ring not stored")
	time.Sleep(200 * time.Millisecond) // several rounds of the registration loop
	assert.Equal(t, uint64(1), c.memberEpoch("s2"), "epoch reported before it was adopted")
	core.mu.Unlock()
	locked = false
	c.waitEpoch(r.Epoch, "s2")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == r.Epoch }, "adopted epoch not reported")
}
