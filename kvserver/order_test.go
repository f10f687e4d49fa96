package kvserver

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChainMessagesStayInOrder: with no fault, a successor never sees an
// update past a gap. Writes to one hot key from many clients make the head
// step the node from many goroutines at once; if two of them queued their
// messages for the successor in another order than the node sent them, the
// successor would drop the later entries, nack, and stall the chain until
// the resend (redis-benchmark's SET on one key waited 200 ms at p99 so).
func TestChainMessagesStayInOrder(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	key := keysIn(3, 1, "hot")[0]
	const clients, writes = 32, 60
	var wg sync.WaitGroup
	for i := range clients {
		w := c.client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range writes {
				w.mustPut(t, key, fmt.Sprintf("c%d-%d", i, j))
			}
		}()
	}
	wg.Wait()
	for _, id := range chain3 {
		m := c.srv(id).metrics
		assert.Zero(t, testutil.ToFloat64(m.dropped.WithLabelValues(dropGap)), "%s dropped updates after a gap", id)
	}
	// Every write went down the whole chain: the tail applied them all.
	d := c.digest("s3", partOf(key))[partOf(key)]
	require.EqualValues(t, clients*writes, d.AppliedSeq)
}
