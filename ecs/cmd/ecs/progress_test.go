package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/stretchr/testify/require"
)

// TestProgressETA: the ETA follows the bytes copied in the last window,
// within a partition's move too, and falls back to partitions finished.
func TestProgressETA(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	m := opclient.MoveStatus{Pending: 8, Total: 8, BytesLeft: 100 << 20}
	require.Equal(t, time.Duration(-1), w.eta(m), "no samples")
	w.add(sample{at: t0})
	w.add(sample{at: t0.Add(2 * time.Second), bytes: 20 << 20})
	require.Equal(t, 10*time.Second, w.eta(m), "100 MB left at 10 MB/s, no partition finished yet")

	// Samples older than the window no longer count: the rate is recent.
	w.add(sample{at: t0.Add(20 * time.Second), bytes: 30 << 20, done: 2})
	w.add(sample{at: t0.Add(22 * time.Second), bytes: 70 << 20, done: 4})
	require.Equal(t, 5*time.Second, w.eta(m), "100 MB left at 20 MB/s")

	m.BytesLeft = 0 // an empty cluster: partitions are the measure
	m.Pending = 4
	require.Equal(t, 4*time.Second, w.eta(m))
	require.Equal(t, time.Duration(0), w.eta(opclient.MoveStatus{Total: 4, Done: 4}))
}

func TestProgressPermille(t *testing.T) {
	require.Equal(t, 250, permille(opclient.MoveStatus{Pending: 3, Total: 4, Done: 1}))
	require.Equal(t, 400, permille(opclient.MoveStatus{Pending: 4, Total: 4, CopiedBytes: 40, BytesLeft: 60}), "within the first move")
	require.Equal(t, 1000, permille(opclient.MoveStatus{Total: 4, Done: 4}))
}

// TestProgressPlainLines: without a terminal, one line a second at most,
// only when it changed.
func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	p := &progress{what: "add", out: &out, now: func() time.Time { return clock }}
	st := &opclient.Status{Epoch: 7, Moves: opclient.MoveStatus{Pending: 2, Total: 2, CopiedBytes: 1 << 20, CopiedKeys: 1024, BytesLeft: 1 << 20}}
	p.update(st)
	clock = clock.Add(300 * time.Millisecond)
	st.Moves.CopiedBytes = 2 << 20
	p.update(st) // changed, but within the second
	clock = clock.Add(time.Second)
	p.update(st)
	p.update(st) // unchanged
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	require.Equal(t, "add: epoch 7, 0/2 partitions moved, 1.0 MB in 1,024 keys copied, 0 copying, 0 under-replicated, ETA unknown", lines[0])
	require.Contains(t, lines[1], "2.1 MB in 1,024 keys copied")
	require.NotContains(t, lines[1], "ETA unknown")
}
