package kvserver

import (
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
)

// syncedVersion returns the chain version id reported synced at for p, or 0.
func (c *tcluster) syncedVersion(id string, p int) uint64 {
	c.t.Helper()
	return c.versionAt(etcdkeys.Synced(c.name, id, p))
}

// TestPromotedTailReportsSynced: a promoted learner whose old tail's updates
// were lost reports synced/<id>/<p> only once its promotion sync is done,
// with the chain version it then follows (here one later than the
// promotion: the head was removed meanwhile, which keeps its predecessor).
func TestPromotedTailReportsSynced(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4)
	const p = 9
	keys := keysIn(p, 2, "rep")
	w := c.client()
	heal, r := c.promoteLagging(t, w, p, keys, "lost-on-the-way")
	r = c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members = []string{"s2", "s3", "s4"} })
	c.waitEpoch(r.Epoch, "s2", "s3", "s4")
	time.Sleep(300 * time.Millisecond)
	assert.Zero(t, c.syncedVersion("s4", p), "reported synced while it lacks a committed write")

	heal()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return c.syncedVersion("s4", p) == r.Chains[p].Version },
		"synced not reported at version %d", r.Chains[p].Version)
	got, ok := c.storeHas("s4", keys[1])
	assert.True(t, ok)
	assert.Equal(t, "lost-on-the-way", got)
	for _, id := range []string{"s1", "s2", "s3"} {
		assert.Zero(t, c.syncedVersion(id, p), "%s was never promoted", id)
	}
}
