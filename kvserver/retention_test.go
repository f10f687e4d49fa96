package kvserver

import (
	"testing"
	"time"

	"github.com/ecskv/ecskv/kvclient"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/stretchr/testify/require"
)

// TestDedupRetentionCoversClientRetries: a server remembers a request id
// at least twice as long as the client library retries the write that
// carries it, so no retry comes after the id is forgotten, even between
// clocks seconds apart.
func TestDedupRetentionCoversClientRetries(t *testing.T) {
	retention := time.Duration(chainsm.DefaultDedupRetentionMs) * time.Millisecond
	require.GreaterOrEqual(t, retention, 2*kvclient.WriteRetryWindow)
}
