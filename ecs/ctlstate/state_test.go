package ctlstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func set(ps ...int) map[int]struct{} {
	m := map[int]struct{}{}
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}

func TestProgressAdvance(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	var pr Progress
	pr, n := pr.Advance(set(), set(1, 2, 3, 4), 2, t0)
	require.Zero(t, n)
	require.Equal(t, Progress{Pending: 4, Total: 4, InFlight: 2, StartedUnixMs: t0.UnixMilli()}, pr)
	require.Equal(t, time.Duration(-1), pr.ETA(), "no rate yet")

	pr, n = pr.Advance(set(1, 2, 3, 4), set(3, 4, 5), 1, t0.Add(2*time.Second))
	require.Equal(t, 2, n)
	require.Equal(t, 2, pr.Done)
	require.Equal(t, 3, pr.Pending)
	require.Equal(t, 5, pr.Total, "a partition that became pending joins the round")
	require.Equal(t, 3*time.Second, pr.ETA(), "1s per partition so far")

	pr, n = pr.Advance(set(3, 4, 5), set(), 0, t0.Add(5*time.Second))
	require.Equal(t, 3, n)
	require.Equal(t, Progress{Done: 5, Total: 5, StartedUnixMs: t0.UnixMilli(), UpdatedUnixMs: t0.Add(5 * time.Second).UnixMilli()}, pr)
	require.Zero(t, pr.ETA())

	pr, _ = pr.Advance(set(), set(7), 1, t0.Add(time.Minute))
	require.Equal(t, Progress{Pending: 1, Total: 1, InFlight: 1, StartedUnixMs: t0.Add(time.Minute).UnixMilli()}, pr, "a new round")
}

func TestProgressAdvanceAfterTakeover(t *testing.T) {
	// A new leader does not know which partitions were pending: it keeps
	// the published counts and goes on from what it sees.
	pr := Progress{Pending: 3, Done: 7, Total: 10, StartedUnixMs: 1}
	got, n := pr.Advance(nil, set(1, 2), 1, time.UnixMilli(50))
	require.Zero(t, n)
	require.Equal(t, 7, got.Done)
	require.Equal(t, 2, got.Pending)
	require.Equal(t, 9, got.Total)
}
