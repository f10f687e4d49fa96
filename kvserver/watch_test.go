package kvserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// watchOnce opens a watch of key at server id after seq and returns the
// stream.
func (c *tcluster) watchOnce(ctx context.Context, id string, p int, key string, after uint64) kvpb.KV_WatchClient {
	c.t.Helper()
	st, err := c.kv(id).Watch(ctx, &kvpb.WatchRequest{Header: &kvpb.RequestHeader{}, Partition: uint32(p), Key: []byte(key), AfterSeq: after})
	require.NoError(c.t, err)
	return st
}

// nextEvents receives until it has n events, returning them and the last
// resume point. It receives at least one message: with n 0, the watch's
// first, which tells where it starts. A watch from now starts when the
// server takes the call, which the client's Watch does not wait for:
// writes made before that first message may come before the start.
func nextEvents(t *testing.T, st kvpb.KV_WatchClient, n int) ([]*kvpb.WatchEvent, uint64) {
	t.Helper()
	var out []*kvpb.WatchEvent
	var seq uint64
	for first := true; first || len(out) < n; first = false {
		resp, err := st.Recv()
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_STATUS_UNSPECIFIED, resp.Status, resp.Message)
		out = append(out, resp.Events...)
		seq = max(seq, resp.Seq)
	}
	return out, seq
}

// TestWatchResumesAtNewTail: a watch sees each committed write of its key
// once, in order, with its version; after the tail leaves the chain it
// resumes at the new tail after the last seq it got, with no gap and no
// repeat; a watch from history no longer kept is refused, never shortened.
func TestWatchResumesAtNewTail(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const p = 4
	keys := keysIn(p, 2, "watch")
	key, other := keys[0], keys[1]

	st := c.watchOnce(ctx, "s3", p, key, 0)
	_, start := nextEvents(t, st, 0) // the start point
	_ = start
	for i := range 5 {
		_, err := w.put(ctx, key, fmt.Sprint("v", i))
		require.NoError(t, err)
		_, err = w.put(ctx, other, "noise")
		require.NoError(t, err)
	}
	_, err := w.del(ctx, key)
	require.NoError(t, err)
	evs, last := nextEvents(t, st, 6)
	for i, e := range evs[:5] {
		require.Equal(t, kvpb.WatchEvent_PUT, e.Kind)
		require.Equal(t, fmt.Sprint("v", i), string(e.Value))
		require.Equal(t, key, string(e.Key), "a key watch sees only its key")
		if i > 0 {
			require.Greater(t, e.Version, evs[i-1].Version)
		}
	}
	require.Equal(t, kvpb.WatchEvent_DELETE, evs[5].Kind)

	// s3 leaves: its stream ends asking to resume elsewhere; the new tail
	// s2 continues after the last seq seen.
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members = []string{"s1", "s2"} })
	c.waitEpoch(r.Epoch, "s1", "s2")
	for {
		resp, err := st.Recv()
		require.NoError(t, err)
		if resp.Status != kvpb.Status_STATUS_UNSPECIFIED {
			require.Equal(t, kvpb.Status_SERVER_NOT_RESPONSIBLE, resp.Status)
			break
		}
		require.Empty(t, resp.Events, "no write happened")
	}
	_, err = w.put(ctx, key, "after")
	require.NoError(t, err)
	st2 := c.watchOnce(ctx, "s2", p, key, last)
	evs, _ = nextEvents(t, st2, 1)
	require.Len(t, evs, 1, "no repeat of what the first stream delivered")
	require.Equal(t, "after", string(evs[0].Value))

	// History no longer kept: refused with OutOfRange.
	c.srv("s2").watch.mu.Lock()
	c.srv("s2").watch.maxEntries = 2
	c.srv("s2").watch.mu.Unlock()
	for range 3 {
		_, err = w.put(ctx, other, "more")
		require.NoError(t, err)
	}
	st3 := c.watchOnce(ctx, "s2", p, key, last)
	_, err = st3.Recv()
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "no longer kept")
}

// TestWatchRefusedWhereHistoryMissing: a member that joined by a snapshot
// holds the writes it copied but has no history of them. Before any write
// commits there, a watch resuming from before the snapshot must be
// refused as compacted (the client then resumes at a member that keeps
// the history), not accepted and left waiting: with no further writes it
// would never see the writes it missed, among them acknowledged ones.
func TestWatchRefusedWhereHistoryMissing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.publishInitial("s1", "s2")
	c.waitEpoch(1, "s1", "s2", "s3")
	w := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const p = 5
	key := keysIn(p, 1, "hist")[0]

	st := c.watchOnce(ctx, "s2", p, key, 0)
	nextEvents(t, st, 0)
	for i := range 4 {
		_, err := w.put(ctx, key, fmt.Sprint("v", i))
		require.NoError(t, err)
	}
	evs, _ := nextEvents(t, st, 4)
	after := evs[0].Version // the watcher saw v0 and missed the rest

	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s3" })
	v := r.Chains[p].Version
	testutil.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s3", p) == v },
		"learner never announced ready at version %d", v)
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = []string{"s1", "s2", "s3"}
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")

	// s3 copied v1..v3 and committed nothing since: it cannot resume the
	// watch after v0.
	st3 := c.watchOnce(ctx, "s3", p, key, after)
	_, err := st3.Recv()
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "no longer kept")

	// s2 kept the history: the watch resumes there with v1..v3.
	st2 := c.watchOnce(ctx, "s2", p, key, after)
	evs, _ = nextEvents(t, st2, 3)
	for i, e := range evs {
		require.Equal(t, fmt.Sprint("v", i+1), string(e.Value))
	}
}
