package kvclient

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetriedRefusalInUnavailable: an answer the library retries (here
// SERVER_STOPPED) until the deadline passes is still matched inside
// ErrUnavailable, with the server's message.
func TestRetriedRefusalInUnavailable(t *testing.T) {
	c := newMemClient(t, startMemServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "stopped")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, ErrServerStopped)
	require.ErrorContains(t, err, "kvserver: server stopped: test server stops")
}
