package kvserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/config"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/kvserver/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// member returns id's membership record.
func (c *tcluster) member(id string) etcdkeys.Member {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, etcdkeys.Server(c.name, id))
	require.NoError(c.t, err)
	require.Len(c.t, resp.Kvs, 1)
	m, err := etcdkeys.UnmarshalMember(resp.Kvs[0].Value)
	require.NoError(c.t, err)
	return m
}

// memberEpoch returns the epoch in id's membership record.
func (c *tcluster) memberEpoch(id string) uint64 { return c.member(id).Epoch }

// TestEpochReportedOnceAdopted: a server routes by a new ring as soon as it
// stored it, but reports its epoch to the ECS only once the chain protocol
// took on its chains (here held up by the protocol's lock).
func TestEpochReportedOnceAdopted(t *testing.T) {
	t.Parallel()
	c := newChain3(t, 3)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == 1 }, "epoch 1 not reported")
	core := c.srv("s2").core
	core.mu.Lock()
	locked := true
	defer func() {
		if locked {
			core.mu.Unlock()
		}
	}()
	r := c.publish(func(r *ringmeta.Ring) { r.Chains[7].Members = []string{"s1", "s2"} })
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		cur := c.srv("s2").ring.Load()
		return cur != nil && cur.Epoch == r.Epoch
	}, "ring not stored")
	time.Sleep(200 * time.Millisecond) // several rounds of the registration loop
	assert.Equal(t, uint64(1), c.memberEpoch("s2"), "epoch reported before it was adopted")
	core.mu.Unlock()
	locked = false
	c.waitEpoch(r.Epoch, "s2")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return c.memberEpoch("s2") == r.Epoch }, "adopted epoch not reported")
}

// TestDuplicateIDRefused: a second process under the id of a running
// server does not start (it would take turns with the real one in the
// membership record); once the real one is gone the id is free again at
// once, without waiting for its lease to run out.
func TestDuplicateIDRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.cli.Get(context.Background(), etcdkeys.Server(c.name, "s1"))
		return err == nil && len(resp.Kvs) == 1
	}, "s1 not registered")
	dup := newServerWithID(t, c, "s1")
	err := dup.Start()
	require.ErrorIs(t, err, ErrDuplicateID)
	assert.Contains(t, err.Error(), c.node("s1").addr)

	// A crash leaves the record until its lease runs out (here: put back
	// after a clean stop, under a lease of its own): the restart is not
	// held back by it.
	ctx := context.Background()
	rec, err := c.cli.Get(ctx, etcdkeys.Server(c.name, "s1"))
	require.NoError(t, err)
	require.Len(t, rec.Kvs, 1)
	c.stopNode("s1")
	lease, err := c.cli.Grant(ctx, 30)
	require.NoError(t, err)
	_, err = c.cli.Put(ctx, string(rec.Kvs[0].Key), string(rec.Kvs[0].Value), clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	start := time.Now()
	c.restartNode("s1")
	assert.Less(t, time.Since(start), 2*time.Second, "restart after a crash waited for the old record")
}

// TestDuplicateIDRace: two processes started at once under one id both
// pass the start check; registration is an etcd transaction, so one of
// them holds the id and the other stops with ErrDuplicateID.
func TestDuplicateIDRace(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	start := func() (*Server, error) {
		s := newServerWithID(t, c, "s9")
		return s, s.Start()
	}
	type started struct {
		s   *Server
		err error
	}
	res := make(chan started, 2)
	for range 2 {
		go func() { s, err := start(); res <- started{s, err} }()
	}
	var live []*Server
	for range 2 {
		r := <-res
		if r.err != nil {
			require.ErrorIs(t, r.err, ErrDuplicateID)
			continue
		}
		t.Cleanup(r.s.Stop)
		live = append(live, r.s)
	}
	require.NotEmpty(t, live)
	if len(live) == 2 { // both passed the start check: registration decides
		select {
		case err := <-live[0].Fatal():
			require.ErrorIs(t, err, ErrDuplicateID)
			live = live[1:]
		case err := <-live[1].Fatal():
			require.ErrorIs(t, err, ErrDuplicateID)
			live = live[:1]
		case <-time.After(15 * time.Second):
			t.Fatal("two processes hold server id s9")
		}
	}
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.cli.Get(context.Background(), etcdkeys.Server(c.name, "s9"))
		if err != nil || len(resp.Kvs) != 1 {
			return false
		}
		m, err := etcdkeys.UnmarshalMember(resp.Kvs[0].Value)
		return err == nil && m.Incarnation == live[0].incarnation()
	}, "the survivor does not hold the record")
}

// TestRegisterExclusive: registration itself refuses a record held by
// another live incarnation (whatever the start check saw), waits out an
// unreachable one, and takes over one that advertised its own address.
func TestRegisterExclusive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	holder, other := c.node("s1"), c.node("s2").srv
	key := etcdkeys.Server(c.name, "s1")
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.cli.Get(context.Background(), key)
		return err == nil && len(resp.Kvs) == 1
	}, "s1 not registered")
	m := etcdkeys.Member{ID: "s1", Addr: other.cfg.Advertise, Incarnation: other.incarnation()}
	_, err := other.register(key, &m)
	require.ErrorIs(t, err, ErrDuplicateID, "a live holder")
	require.Contains(t, err.Error(), holder.addr)

	c.stopNode("s1") // its record goes with its lease; put back one of a process gone silent elsewhere
	ctx := context.Background()
	lease, err := c.cli.Grant(ctx, 30)
	require.NoError(t, err)
	ghost := etcdkeys.Member{ID: "s1", Addr: testutil.FreeAddr(t), Incarnation: 42}
	_, err = c.cli.Put(ctx, key, string(ghost.Marshal()), clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	_, err = other.register(key, &m)
	var held idHeldError
	require.ErrorAs(t, err, &held, "an unreachable holder is waited out")

	ghost.Addr = other.cfg.Advertise // it advertised the address we listen on: gone
	_, err = c.cli.Put(ctx, key, string(ghost.Marshal()), clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	_, err = other.register(key, &m)
	require.NoError(t, err)
}

// newServerWithID is a server of c's cluster under id, not yet started,
// outside c's nodes.
func newServerWithID(t *testing.T, c *tcluster, id string) *Server {
	cfg := config.DefaultKVServer()
	cfg.ID, cfg.Listen, cfg.DataDir = id, testutil.FreeAddr(t), t.TempDir()
	cfg.Cluster, cfg.EtcdEndpoints, cfg.LogLevel = c.name, testEtcdEndpoints, "error"
	s, err := New(cfg, zap.NewNop())
	require.NoError(t, err)
	s.fs = vfs.NewMem()
	return s
}

// TestDiskSizeReported: a server's membership record (the ECS's status
// page and its placement) follows the store's size as it grows, though
// the size is read only every diskEvery.
func TestDiskSizeReported(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	c.tune = func(s *Server) { s.diskEvery = 200 * time.Millisecond }
	srv := c.addNode("s1").srv
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err := c.cli.Get(context.Background(), etcdkeys.Server(c.name, "s1"))
		return err == nil && len(resp.Kvs) == 1
	}, "s1 not registered")
	value := make([]byte, 64<<10)
	seq := uint64(0)
	// Twice: the first check may come before any write.
	for round := 0; round < 2; round++ {
		before := c.member("s1").DiskBytes
		for range 64 { // 4 MiB
			seq++
			_, err := srv.store.Apply(0, seq, []storage.Op{{Kind: storage.OpPut, Key: fmt.Appendf(nil, "k%d", seq), Value: value}}, time.Now().UnixMilli())
			require.NoError(t, err)
		}
		testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
			return c.member("s1").DiskBytes >= before+2<<20
		}, "the record's store size did not follow the store (round %d)", round)
	}
}
