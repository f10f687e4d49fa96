package kvserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/kvserver/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// readyVersion returns the chain version learner id announced for p, or 0.
func (c *tcluster) readyVersion(id string, p int) uint64 {
	c.t.Helper()
	return c.versionAt(etcdkeys.Ready(c.name, id, p))
}

// versionAt reads a chain version a server reported under key, or 0.
func (c *tcluster) versionAt(key string) uint64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, key)
	require.NoError(c.t, err)
	if len(resp.Kvs) == 0 {
		return 0
	}
	v, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	require.NoError(c.t, err)
	return v
}

// seed writes n keys of partition p, with values of size bytes, straight
// into the stores of ids in batches of 100 (seqs 1, 2, ...): a chain that
// already holds data. Call it before the first ring.
func (c *tcluster) seed(ids []string, p, n, size int) []string {
	c.t.Helper()
	keys := keysIn(p, n, "pre")
	for _, id := range ids {
		st := c.srv(id).store
		for b := 0; b*100 < n; b++ {
			var ops []storage.Op
			for _, k := range keys[b*100 : min((b+1)*100, n)] {
				ops = append(ops, storage.Op{Kind: storage.OpPut, Key: []byte(k), Value: []byte(seedValue(k, size))})
			}
			_, err := st.ApplyEntry(p, storage.LogEntry{Seq: uint64(b + 1), Ops: ops}, false, nowMs())
			require.NoError(c.t, err)
		}
		// Committed history: nothing of it is in flight.
		require.NoError(c.t, st.TruncateLog(p, uint64((n+99)/100)))
		require.NoError(c.t, c.srv(id).core.recover())
	}
	return keys
}

func seedValue(key string, size int) string { return key + "=" + strings.Repeat("x", size) }

// TestChainLearner moves a partition the way the ECS does (DESIGN §4): add a
// learner while writes go on, promote it when it announces ready, then
// remove an old member.
func TestChainLearner(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	const p = 6
	seeded := c.seed(chain3, p, 2000, 600) // ~1.3 MB: several snapshot chunks
	c.publishInitial(chain3...)
	c.waitEpoch(1, "s1", "s2", "s3", "s4")
	wl := c.startWorkload("learn", 3, func(g, i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("learn-%d-%d", g, i) // anywhere
		}
		return keysIn(p, 1, fmt.Sprintf("learnp-%d-%d", g, i))[0] // in p
	})
	wl.waitWrites(t, 20)

	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	v := r.Chains[p].Version
	testutil.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v },
		"learner never announced ready at version %d", v)
	// Not a member yet: s4 does not list p in a full digest.
	resp, err := c.admin("s4").Digest(context.Background(), &kvpb.DigestRequest{})
	require.NoError(t, err)
	for _, d := range resp.Partitions {
		assert.NotEqual(t, uint32(p), d.Partition, "a learner reported as a member")
	}
	wl.waitWrites(t, 20)

	// Promotion: the learner becomes the tail.
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = append(r.Chains[p].Members, "s4")
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s3", "s4")
	wl.waitWrites(t, 30)
	acked := wl.stop(t)
	c.waitConverged([]string{"s1", "s2", "s3", "s4"}, []int{p}, 10*time.Second)
	c.checkAcked(t, acked)

	// The old head leaves: it drops the partition, the rest agree.
	wl = c.startWorkload("after", 2, func(g, i int) string {
		return keysIn(p, 1, fmt.Sprintf("after-%d-%d", g, i))[0]
	})
	r = c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members = []string{"s2", "s3", "s4"} })
	c.waitEpoch(r.Epoch, "s1", "s2", "s3", "s4")
	wl.waitWrites(t, 30)
	acked = append(acked, wl.stop(t)...)
	rest := []string{"s2", "s3", "s4"}
	c.waitConverged(rest, []int{p}, 10*time.Second)
	d := c.digest("s1", p)[p]
	assert.Zero(t, d.AppliedSeq, "removed member kept applied_seq")
	assert.Zero(t, d.Keys, "removed member kept keys")
	assert.Greater(t, c.digest("s4", p)[p].Keys, uint64(2000))
	c.checkAcked(t, acked)
	w := c.client()
	for _, k := range seeded[:50] {
		v, ok := w.mustGet(t, k)
		assert.True(t, ok, k)
		assert.Equal(t, seedValue(k, 600), v, k)
	}
	// Other partitions never involved s4.
	c.waitConverged(chain3, []int{0, 5, 15}, 5*time.Second)
}

// blockRing keeps server id from installing any newer ring until the
// returned release is called (its ring watcher and etcd ping wait on
// ringMu), as if its link to etcd were slow.
func (c *tcluster) blockRing(id string) (release func()) {
	s := c.srv(id)
	s.ringMu.Lock()
	var once sync.Once
	release = func() { once.Do(s.ringMu.Unlock) }
	c.t.Cleanup(release)
	return release
}

// TestChainPromotionRace: the learner learns of its promotion before the old
// tail does. A write the old tail commits meanwhile, and forwards to the
// learner, must reach the new tail: it serves reads of it.
func TestChainPromotionRace(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4)
	const p = 2
	keys := keysIn(p, 3, "race")
	w := c.client()
	w.mustPut(t, keys[0], "before")

	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	v := r.Chains[p].Version
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v }, "learner not ready")

	// s1..s3 miss the promotion for a while; s4 applies it.
	var releases []func()
	for _, id := range chain3 {
		releases = append(releases, c.blockRing(id))
	}
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = append(r.Chains[p].Members, "s4")
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s4")
	// Committed by the old chain (tail s3), forwarded to s4 as a learner update.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range chain3 {
		require.Less(t, c.srv(id).appliedEpoch(), r.Epoch)
	}
	// The head may answer SERVER_NOT_READY while it reconciles with its
	// successor after the learner joined; a client retries (same id).
	req := &kvpb.PutRequest{Header: w.header(), Key: []byte(keys[1]), Value: []byte("during")}
	var resp *kvpb.Response
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		var err error
		resp, err = c.kv("s1").Put(ctx, req)
		require.NoError(t, err)
		return resp.Status != kvpb.Status_SERVER_NOT_READY
	}, "the head stays not ready")
	require.Equal(t, kvpb.Status_SUCCESS, resp.Status)
	for _, rel := range releases {
		rel()
	}
	c.waitEpoch(r.Epoch, chain3...)

	// The new tail must serve the acknowledged write, and hold it.
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.getAt("s4", keys[1], false)
		require.NoError(t, err)
		switch resp.Status {
		case kvpb.Status_SUCCESS:
			assert.Equal(t, "during", string(resp.Value))
			return true
		case kvpb.Status_NOT_FOUND:
			t.Fatalf("new tail s4 answers NOT_FOUND for a write acknowledged before its promotion")
		}
		return false
	})
	c.waitConverged([]string{"s1", "s2", "s3", "s4"}, []int{p}, 5*time.Second)
}

// TestLearnerAsksBeforeTailAdopts: the learner adopts the ring that names
// it before its tail does, as often happens when the ECS publishes one. The
// tail answers the snapshot request once it adopts that ring, rather than
// refusing it and leaving the learner to ask again a retransmit interval
// (1 s) later.
func TestLearnerAsksBeforeTailAdopts(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4)
	const p = 3
	w := c.client()
	for _, k := range keysIn(p, 5, "early") {
		w.mustPut(t, k, "v")
	}
	release := c.blockRing("s3") // the tail
	published := time.Now()
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	v := r.Chains[p].Version
	c.waitEpoch(r.Epoch, "s4")
	time.Sleep(150 * time.Millisecond) // the learner's request waits at the tail
	release()
	testutil.Eventually(t, 10*time.Second, 5*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v },
		"learner never announced ready at version %d", v)
	// Refused, the learner would ask again only 1 s after its first request.
	assert.Less(t, time.Since(published), 850*time.Millisecond, "learner waited for a retransmit")
}

// TestChainLearnerSourceFails: the tail a learner copies from crashes; the
// ECS removes it and clears the learner (one epoch), then sets the learner
// again, which copies from the new tail and is promoted.
func TestChainLearnerSourceFails(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	const p = 10
	c.seed(chain3, p, 500, 600)
	c.publishInitial(chain3...)
	c.waitEpoch(1, "s1", "s2", "s3", "s4")
	wl := c.startWorkload("src", 3, func(g, i int) string {
		return keysIn(p, 1, fmt.Sprintf("src-%d-%d", g, i))[0]
	})
	wl.waitWrites(t, 20)

	c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	c.stopNode("s3")
	r := c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = []string{"s1", "s2"}
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s4")
	d := c.digest("s4", p)[p]
	assert.Zero(t, d.Keys, "a learner dropped from the chain kept its copy")
	wl.waitWrites(t, 20)

	r = c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	v := r.Chains[p].Version
	testutil.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v }, "learner not ready at %d", v)
	resp, err := c.getAt("s4", keysIn(p, 1, "pre")[0], true)
	require.NoError(t, err)
	assert.NotEqual(t, "s4", resp.Server, "a learner served a read")
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = []string{"s1", "s2", "s4"}
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s4")
	wl.waitWrites(t, 30)
	acked := wl.stop(t)
	c.waitConverged([]string{"s1", "s2", "s4"}, []int{p}, 10*time.Second)
	c.checkAcked(t, acked)
}

// cutLink makes every message server from sends to server to lost until the
// returned heal is called: from's connection to to is swapped for one to a
// closed port, which breaks its stream and fails every reopen.
func (c *tcluster) cutLink(from, to string) (heal func()) {
	c.t.Helper()
	s, addr := c.srv(from), c.node(to).addr
	dead, err := grpc.NewClient(testutil.FreeAddr(c.t), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(c.t, err)
	old, err := s.peers.conn(addr)
	require.NoError(c.t, err)
	s.peers.mu.Lock()
	s.peers.conns[addr] = dead
	s.peers.mu.Unlock()
	_ = old.Close()
	s.peers.setCut(to, true)
	var once sync.Once
	heal = func() {
		once.Do(func() {
			s.peers.setCut(to, false)
			s.peers.mu.Lock()
			delete(s.peers.conns, addr) // the next open dials afresh
			s.peers.mu.Unlock()
			_ = dead.Close()
		})
	}
	c.t.Cleanup(heal)
	return heal
}

// TestChainPromotedTailStaleRead: updates the old tail forwards to its
// learner are lost (its link to the learner is down); the learner is
// promoted anyway (it announced ready after its snapshot). As the new tail
// it serves no reads until it holds everything the old tail committed (the
// promotion sync), and once the link heals the old tail resends what it
// lacks (its kept learner updates), so the chain converges without a later
// write.
func TestChainPromotedTailStaleRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// then, while the new tail is still syncing, another chain change
		// that keeps its predecessor (the ECS strips a failed head).
		then func(r *ringmeta.Ring)
	}{
		{"promotion", nil},
		{"promotion then head removed", func(r *ringmeta.Ring) { r.Chains[12].Members = []string{"s2", "s3", "s4"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain3(t, 4)
			const p = 12
			keys := keysIn(p, 2, "promo")
			w := c.client()
			w.mustPut(t, keys[0], "before")
			r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
			v := r.Chains[p].Version
			testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v }, "learner not ready")

			heal := c.cutLink("s3", "s4")
			assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, keys[1], "lost-on-the-way"))
			r = c.publish(func(r *ringmeta.Ring) {
				r.Chains[p].Members = append(r.Chains[p].Members, "s4")
				r.Chains[p].Learner = ""
			})
			c.waitEpoch(r.Epoch, "s1", "s2", "s3", "s4")
			if tc.then != nil {
				r = c.publish(tc.then)
				c.waitEpoch(r.Epoch, "s1", "s2", "s3", "s4")
			}
			for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
				resp, err := c.getAt("s4", keys[1], false)
				require.NoError(t, err)
				require.NotEqual(t, kvpb.Status_NOT_FOUND, resp.Status,
					"new tail s4 answers NOT_FOUND for a write acknowledged before its promotion")
				time.Sleep(20 * time.Millisecond)
			}
			heal()
			members := r.Chains[p].Members
			c.waitConverged(members, []int{p}, 5*time.Second)
			v2, ok := w.mustGet(t, keys[1])
			assert.True(t, ok)
			assert.Equal(t, "lost-on-the-way", v2)
		})
	}
}

// promoteLagging writes keys[0], makes s4 the learner of p, cuts s3 -> s4
// so that keys[1] = lost reaches the old members only, and promotes s4 to
// the chain's tail. It returns the promoting ring and the link's heal.
func (c *tcluster) promoteLagging(t *testing.T, w *tclient, p int, keys []string, lost string) (func(), *ringmeta.Ring) {
	t.Helper()
	w.mustPut(t, keys[0], "before")
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[p].Learner = "s4" })
	v := r.Chains[p].Version
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v }, "learner not ready")
	heal := c.cutLink("s3", "s4")
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, keys[1], lost))
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = append(r.Chains[p].Members, "s4")
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s3", "s4")
	return heal, r
}

// TestChainOldTailFailsDuringPromotionSync: the old tail dies while the new
// tail still lacks writes the old tail committed (its learner updates were
// lost). The new tail must not serve stale reads, and writes must commit
// again: its new predecessor no longer keeps those entries in its log, so
// it answers the new tail's hello by having it copy the partition (a
// snapshot) before it acks anything. The ECS never publishes this chain
// (the new tail is marked unsynced in etcd and demoted instead, ecs/core);
// the test publishes it by hand to check the kvserver's own recovery.
func TestChainOldTailFailsDuringPromotionSync(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4)
	const p = 14
	keys := keysIn(p, 3, "dies")
	w := c.client()
	_, r := c.promoteLagging(t, w, p, keys, "only-on-s1-s2-s3")
	c.stopNode("s3")
	r = c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members = []string{"s1", "s2", "s4"} })
	c.waitEpoch(r.Epoch, "s1", "s2", "s4")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, werr := w.put(ctx, keys[2], "after")
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		resp, err := c.getAt("s4", keys[1], false)
		require.NoError(t, err)
		require.NotEqual(t, kvpb.Status_NOT_FOUND, resp.Status, "new tail s4 serves a stale read")
		time.Sleep(20 * time.Millisecond)
	}
	if werr != nil {
		t.Fatalf("writes to p%d never commit: the new tail lacks a committed write its new predecessor cannot resend (%v)", p, werr)
	}
	c.waitConverged([]string{"s1", "s2", "s4"}, []int{p}, 5*time.Second)
	v2, ok := w.mustGet(t, keys[1])
	assert.True(t, ok)
	assert.Equal(t, "only-on-s1-s2-s3", v2)
}

// TestDemotedNewTailRecopies: the recovery of the stall above that the ECS
// uses (ecs/membership.go): the new tail, which lacks a write the old tail
// committed, goes back to being the learner of the shortened chain; it copies
// the partition afresh from the new tail and is promoted again.
func TestDemotedNewTailRecopies(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 4)
	const p = 14
	keys := keysIn(p, 3, "demote")
	w := c.client()
	heal, r := c.promoteLagging(t, w, p, keys, "only-on-s1-s2-s3")
	c.stopNode("s3")
	heal()
	r = c.publish(func(r *ringmeta.Ring) { r.Chains[p].Members, r.Chains[p].Learner = []string{"s1", "s2"}, "s4" })
	v := r.Chains[p].Version
	c.waitEpoch(r.Epoch, "s1", "s2", "s4")
	assert.Equal(t, kvpb.Status_SUCCESS, w.mustPut(t, keys[2], "after"))
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool { return c.readyVersion("s4", p) == v }, "demoted tail not ready again")
	r = c.publish(func(r *ringmeta.Ring) {
		r.Chains[p].Members = append(r.Chains[p].Members, "s4")
		r.Chains[p].Learner = ""
	})
	c.waitEpoch(r.Epoch, "s1", "s2", "s4")
	c.waitConverged([]string{"s1", "s2", "s4"}, []int{p}, 5*time.Second)
	for i, want := range []string{"before", "only-on-s1-s2-s3", "after"} {
		got, ok := w.mustGet(t, keys[i])
		assert.True(t, ok)
		assert.Equal(t, want, got)
	}
}
