package kvclient

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// lostAnswers is a transport whose every call may have reached the server
// but got no answer (a connection lost mid-call): it records the request
// ids it was given.
type lostAnswers struct {
	mu  sync.Mutex
	ids map[[2]uint64]int
}

func (l *lostAnswers) call(_ context.Context, _ string, o *op) (*kvpb.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids[[2]uint64{o.header.ClientId, o.header.Seq}]++
	return nil, status.Error(codes.Unavailable, "connection reset")
}

func (l *lostAnswers) close() error { return nil }

// sameRing serves one ring, again and again.
type sameRing struct{ r *ringmeta.Ring }

func (s sameRing) fetch(context.Context, *routedRing) (*ringmeta.Ring, error) { return s.r, nil }
func (s sameRing) close() error                                               { return nil }

// TestWriteRetryWindow: a write whose attempts may each have been applied
// is retried with its request id only within WriteRetryWindow, however
// long the caller waits, and then fails as of unknown outcome: the servers
// forget a request id after twice that, and a retry then could apply it
// again. A read retries until the caller's deadline.
func TestWriteRetryWindow(t *testing.T) {
	rr := zonedRing(t)
	old := writeRetryWindow
	writeRetryWindow = 300 * time.Millisecond
	t.Cleanup(func() { writeRetryWindow = old })
	tr := &lostAnswers{ids: map[[2]uint64]int{}}
	c := &Client{lg: zap.NewNop(), lat: newLatencies(), tr: tr, clientID: 7,
		rings: &ringCache{src: sameRing{rr.Ring}, cur: rr}}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.Put(ctx, "k", []byte("v"))
	took := time.Since(start)
	require.ErrorIs(t, err, ErrUnknownOutcome)
	require.GreaterOrEqual(t, took, writeRetryWindow, "retried for the window")
	require.Less(t, took, 30*time.Second, "not until the caller's deadline")
	require.Len(t, tr.ids, 1, "every attempt carried the one request id")
	for _, n := range tr.ids {
		require.Greater(t, n, 1, "it was retried")
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 3*writeRetryWindow)
	defer rcancel()
	start = time.Now()
	_, err = c.Get(rctx, "k")
	require.ErrorIs(t, err, ErrUnavailable)
	require.False(t, errors.Is(err, ErrUnknownOutcome))
	require.GreaterOrEqual(t, time.Since(start), 3*writeRetryWindow-50*time.Millisecond, "a read retries until the deadline")
}
