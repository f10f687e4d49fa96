package kvserver

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gather returns server id's metric family name, or nil.
func gather(t *testing.T, c *tcluster, id, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := c.srv(id).metrics.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func gaugeOf(mf *dto.MetricFamily, label, value string) (float64, bool) {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetGauge().GetValue(), true
			}
		}
		if label == "" {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsFollowWrites checks what the dashboards and alerts read: every
// member syncs its WAL and stores the keys, the head measures the chain's
// commit time, roles are reported, and nothing stays in flight once acked.
func TestMetricsFollowWrites(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	const n = 20
	for i := 0; i < n; i++ {
		w.mustPut(t, fmt.Sprintf("metrics-%d", i), "v")
	}
	head := c.srv("s1").metrics
	assert.EqualValues(t, n, promtest.ToFloat64(head.requests.WithLabelValues("put", "SUCCESS")))
	assert.Positive(t, promtest.CollectAndCount(head.commit), "head observes chain commit time")
	var commits uint64
	for _, m := range gather(t, c, "s1", "ecskv_replication_commit_seconds").GetMetric() {
		commits += m.GetHistogram().GetSampleCount()
	}
	assert.EqualValues(t, n, commits, "one commit observation per acknowledged write")

	// The write path stage by stage (make profile, the dashboards).
	stageCount := func(id, stage string) uint64 {
		for _, m := range gather(t, c, id, "ecskv_write_stage_seconds").GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	assert.GreaterOrEqual(t, stageCount("s1", stageQueue), uint64(n), "every write at the head is queued once")
	for _, id := range chain3 {
		for _, st := range []string{stageApply, stageSync, stageStep, stageLock} {
			assert.Positive(t, stageCount(id, st), "%s times stage %s", id, st)
		}
	}
	for _, id := range []string{"s2", "s3"} {
		assert.Positive(t, stageCount(id, stageHop), "%s times the hop of what it receives", id)
		updates := gather(t, c, id, "ecskv_replication_batch_updates").GetMetric()[0].GetHistogram()
		assert.GreaterOrEqual(t, updates.GetSampleSum(), float64(n), "%s counts the updates it received", id)
	}

	for _, id := range chain3 {
		syncs := gather(t, c, id, "ecskv_storage_wal_sync_seconds").GetMetric()[0].GetHistogram().GetSampleCount()
		assert.Positive(t, syncs, "%s fsyncs before acknowledging", id)
		for _, role := range roles {
			_, ok := gaugeOf(gather(t, c, id, "ecskv_replication_inflight_updates"), "role", role)
			assert.True(t, ok, "%s reports in-flight depth for role %s", id, role)
			// A middle learns of commits from the tail's relayed ack,
			// which goes with the tick.
			testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
				depth, _ := gaugeOf(gather(t, c, id, "ecskv_replication_inflight_updates"), "role", role)
				return depth == 0
			}, "%s: acknowledged writes leave nothing in flight (%s)", id, role)
		}
		// The key count is refreshed in the background by scrapes.
		testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
			v, _ := gaugeOf(gather(t, c, id, "ecskv_stored_keys"), "", "")
			return v == n
		}, "%s stored_keys reaches %d", id, n)
		free, ok := gaugeOf(gather(t, c, id, "ecskv_storage_filesystem_free_bytes"), "", "")
		assert.True(t, ok && free > 0, "%s reports free disk", id)
	}
	heads, _ := gaugeOf(gather(t, c, "s1", "ecskv_partitions"), "role", "head")
	tails, _ := gaugeOf(gather(t, c, "s3", "ecskv_partitions"), "role", "tail")
	assert.EqualValues(t, c.curRing().Partitions, heads)
	assert.EqualValues(t, c.curRing().Partitions, tails)
}
