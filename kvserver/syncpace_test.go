package kvserver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestSyncPacer: a sync waits only after one that covered several steps'
// writes, and never with no delay configured.
func TestSyncPacer(t *testing.T) {
	p := syncPacer{delay: 300 * time.Microsecond}
	assert.Zero(t, p.wait(), "the first sync waited")
	p.took(1)
	assert.Zero(t, p.wait(), "a sync after a lone step's waited")
	p.took(4)
	assert.Equal(t, 300*time.Microsecond, p.wait(), "a sync under load did not wait")
	p.took(1)
	assert.Zero(t, p.wait(), "the load ended and the sync still waited")

	off := syncPacer{}
	off.took(10)
	assert.Zero(t, off.wait(), "sync-delay 0 waited")
}
