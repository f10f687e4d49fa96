package kvserver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readObs is one read a test made.
type readObs struct {
	start, end time.Time
	status     kvpb.Status
	val        string
	err        error
}

// TestChainReadLeaseCutMember: a member cut from the chain that has not
// learned so (its ring is held back) stops serving reads once its lease runs
// out, and never returns the old value after the new chain acknowledged a
// newer write (DESIGN §4 read leases).
func TestChainReadLeaseCutMember(t *testing.T) {
	for _, tc := range []struct {
		name, victim string
		rest         []string
		anyMember    bool
	}{
		{"tail", "s3", []string{"s1", "s2"}, false},
		{"middle", "s2", []string{"s1", "s3"}, true},
		{"head", "s1", []string{"s2", "s3"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newChain3(t, 3)
			w := c.client()
			key := keysIn(11, 1, "lease")[0]
			w.mustPut(t, key, "old")
			testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
				resp, err := c.getAt(tc.victim, key, tc.anyMember)
				return err == nil && resp.Status == kvpb.Status_SUCCESS
			}, "%s never served the read", tc.victim)

			c.blockRing(tc.victim)
			published := time.Now()
			r := c.publish(setAll(tc.rest...))
			c.waitEpoch(r.Epoch, tc.rest...)
			learned := time.Now() // the grantor applied the ring by now

			var mu sync.Mutex
			var obs []readObs
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					o := readObs{start: time.Now()}
					resp, err := c.getAt(tc.victim, key, tc.anyMember)
					o.end, o.err = time.Now(), err
					if err == nil {
						o.status, o.val = resp.Status, string(resp.Value)
					}
					mu.Lock()
					obs = append(obs, o)
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}()
			assert.Equal(t, kvpb.Status_UPDATE, w.mustPut(t, key, "new"))
			acked := time.Now()
			t.Logf("newer write acknowledged %v after the ring", acked.Sub(published))
			time.Sleep(300 * time.Millisecond) // keep reading at the cut member
			close(stop)
			wg.Wait()

			var lastServed time.Time // start of the last read served: the check came later
			for _, o := range obs {
				require.NoError(t, o.err)
				if o.status == kvpb.Status_SUCCESS {
					lastServed = o.start
					assert.False(t, o.start.After(acked), "stale read of %q at %s, %v after the newer write was acknowledged",
						o.val, tc.victim, o.start.Sub(acked))
				}
			}
			t.Logf("%d reads at %s; last served %v after the ring, %v after the rest applied it",
				len(obs), tc.victim, lastServed.Sub(published), lastServed.Sub(learned))
			// Its grantor stops renewing once it applies the ring; the lease
			// then runs out within one lease length, well inside the holdback.
			assert.Less(t, lastServed.Sub(learned), holdbackBound(), "reads went on past the holdback")
		})
	}
}

// holdbackBound is the holdback plus slack for a loaded test machine.
func holdbackBound() time.Duration { return (&Server{}).holdback() + 300*time.Millisecond }

// TestChainTTL: a key put with a TTL reads as missing once expired and is
// deleted on every member by the head's sweeper, through the chain.
func TestChainTTL(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	w := c.client()
	keys := keysIn(8, 3, "ttl")
	expiring, revived, keep := keys[0], keys[1], keys[2]
	p := partOf(expiring)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The first writes wait out the new chain's holdback; the TTL counts
	// from the head's apply, so start the clock on a warm chain.
	w.mustPut(t, keep, "kept")
	const ttl = 1000
	st, err := w.putH(ctx, w.header(), expiring, "soon-gone", ttl)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_SUCCESS, st)
	_, err = w.putH(ctx, w.header(), revived, "short", ttl)
	require.NoError(t, err)
	assert.Equal(t, kvpb.Status_UPDATE, w.mustPut(t, revived, "forever"), "overwrite before expiry")
	v, ok := w.mustGet(t, expiring)
	assert.True(t, ok)
	assert.Equal(t, "soon-gone", v)

	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		_, ok := w.mustGet(t, expiring)
		return !ok
	}, "expired key still readable")
	// The sweeper deletes it through the chain: every member's count drops.
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		for _, id := range chain3 {
			if c.digest(id, p)[p].Keys != 2 {
				return false
			}
		}
		return true
	}, "expired key not swept on every member")
	c.waitConverged(chain3, []int{p}, 5*time.Second)
	for _, id := range chain3 {
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			resp, err := c.getAt(id, expiring, true)
			return err == nil && resp.Status == kvpb.Status_NOT_FOUND
		}, "any_member read of an expired key at %s", id)
	}
	v, ok = w.mustGet(t, revived)
	assert.True(t, ok, "a key overwritten without TTL expired")
	assert.Equal(t, "forever", v)
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, expiring, "again"), "a put after expiry creates")
}
