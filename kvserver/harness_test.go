package kvserver

// In-process test harness for chain replication: one embedded etcd for the
// package (each test uses its own cluster name under it), N Servers on
// 127.0.0.1 with their own data dirs, and rings published by the test itself
// exactly as the ECS would (epoch +1, a chain's version +1 whenever its
// members or learner change).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// testEtcdEndpoints is the client URL of the package's embedded etcd.
var testEtcdEndpoints []string

func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	e, err := testutil.RunEtcd("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testEtcdEndpoints = e.Endpoints
	code := m.Run()
	e.Close()
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testPartitions is P for the test rings: small keeps every scan cheap.
const testPartitions = 16

var clusterSeq atomic.Int64

// tnode is one server of the test cluster. Its store lives in fs, kept
// across restarts; dir exists on disk only for the filesystem metrics.
type tnode struct {
	id, addr, dir string
	fs            vfs.FS
	srv           *Server
	stopped       bool
}

// tcluster is a set of servers, the etcd client the test publishes rings
// with, and the gRPC connections the test talks to servers through.
type tcluster struct {
	t    testing.TB
	name string
	cli  *clientv3.Client

	mu    sync.Mutex // guards nodes, ring, conns
	nodes map[string]*tnode
	ring  *ringmeta.Ring // last published
	conns map[string]*grpc.ClientConn
	errs  atomic.Int64 // error-level logs from servers

	// Set before the first node starts (newClusterWith): how servers are
	// configured and how the test dials them.
	configure func(*config.KVServer)
	creds     grpc.DialOption
	// grpcReplOnly: servers that act as a version before the replication
	// transport (Server.grpcReplOnly).
	grpcReplOnly map[string]bool
	// tune, when set, adjusts each server before it starts.
	tune func(*Server)
}

// newCluster starts n servers s1..sn (not yet in any ring).
func newCluster(t testing.TB, n int) *tcluster {
	t.Helper()
	return newClusterWith(t, n, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// newClusterWith is newCluster with every server's configuration passed
// through configure and the test's connections dialed with creds.
func newClusterWith(t testing.TB, n int, configure func(*config.KVServer), creds grpc.DialOption) *tcluster {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: testEtcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	require.NoError(t, err)
	// A cluster name is at most 63 characters (config.Validate).
	name := fmt.Sprintf("c%d-%s", clusterSeq.Add(1), strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	c := &tcluster{
		t: t, name: name[:min(len(name), 63)], cli: cli,
		nodes: map[string]*tnode{}, conns: map[string]*grpc.ClientConn{},
		configure: configure, creds: creds,
	}
	t.Cleanup(c.close)
	for i := 1; i <= n; i++ {
		c.addNode(fmt.Sprintf("s%d", i))
	}
	return c
}

// addNode starts a new server id on a fresh port and data dir.
func (c *tcluster) addNode(id string) *tnode {
	c.t.Helper()
	nd := &tnode{id: id, addr: testutil.FreeAddr(c.t), dir: c.t.TempDir(), fs: vfs.NewMem()}
	c.mu.Lock()
	c.nodes[id] = nd
	c.mu.Unlock()
	c.startNode(nd)
	return nd
}

func (c *tcluster) startNode(nd *tnode) {
	c.t.Helper()
	cfg := config.DefaultKVServer()
	cfg.ID, cfg.Listen, cfg.DataDir = nd.id, nd.addr, nd.dir
	cfg.Cluster, cfg.EtcdEndpoints = c.name, testEtcdEndpoints
	cfg.LeaseTTL, cfg.LogLevel = 2*time.Second, "error"
	cfg.CacheEntries, cfg.CacheBytes, cfg.TransferRate = 1000, 1<<20, 0
	if c.configure != nil {
		c.configure(&cfg)
	}
	level := zap.WarnLevel
	if os.Getenv("KVSERVER_TEST_DEBUG") != "" {
		level = zap.DebugLevel
	}
	lg := zaptest.NewLogger(c.t, zaptest.Level(level)).Named(nd.id).
		WithOptions(zap.Hooks(func(e zapcore.Entry) error {
			if e.Level >= zap.ErrorLevel {
				c.errs.Add(1)
			}
			return nil
		}))
	srv, err := New(cfg, lg)
	require.NoError(c.t, err)
	srv.fs = nd.fs
	srv.grpcReplOnly = c.grpcReplOnly[nd.id]
	if c.tune != nil {
		c.tune(srv)
	}
	require.NoError(c.t, srv.Start())
	c.mu.Lock()
	nd.srv, nd.stopped = srv, false
	c.mu.Unlock()
}

// stopNode stops a server (its data dir stays for restartNode).
func (c *tcluster) stopNode(id string) {
	nd := c.node(id)
	start := time.Now()
	nd.srv.Stop()
	// Stop must not sit out its graceful timeout (5s) on idle peer streams or
	// on writes that can no longer commit.
	assert.Less(c.t, time.Since(start), 3*time.Second, "stopping %s", id)
	c.mu.Lock()
	nd.stopped = true
	c.mu.Unlock()
}

// restartNode starts a stopped server again: same id, port and data dir.
func (c *tcluster) restartNode(id string) {
	c.t.Helper()
	c.startNode(c.node(id))
}

func (c *tcluster) node(id string) *tnode {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd, ok := c.nodes[id]
	if !ok {
		c.t.Fatalf("no node %q", id)
	}
	return nd
}

func (c *tcluster) srv(id string) *Server { return c.node(id).srv }

func (c *tcluster) close() {
	c.mu.Lock()
	for a, cc := range c.conns {
		_ = cc.Close()
		delete(c.conns, a)
	}
	var live []*Server
	for _, nd := range c.nodes {
		if !nd.stopped && nd.srv != nil {
			live = append(live, nd.srv)
			nd.stopped = true
		}
	}
	c.mu.Unlock()
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range live {
		wg.Add(1)
		go func() { defer wg.Done(); s.Stop() }()
	}
	wg.Wait()
	assert.Less(c.t, time.Since(start), 3*time.Second, "stopping %d servers", len(live))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, _ = c.cli.Delete(ctx, etcdkeys.Root(c.name), clientv3.WithPrefix())
	cancel()
	_ = c.cli.Close()
	// Every error-level log of a server is a fault (apply, sync, load, drop).
	assert.Zero(c.t, c.errs.Load(), "servers logged errors; see the test log")
}

// conn returns a cached client connection to server id.
func (c *tcluster) conn(id string) *grpc.ClientConn {
	nd := c.node(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[nd.addr]; ok {
		return cc
	}
	cc, err := grpc.NewClient(nd.addr, c.creds)
	require.NoError(c.t, err)
	c.conns[nd.addr] = cc
	return cc
}

func (c *tcluster) kv(id string) kvpb.KVClient       { return kvpb.NewKVClient(c.conn(id)) }
func (c *tcluster) admin(id string) kvpb.AdminClient { return kvpb.NewAdminClient(c.conn(id)) }

// --- rings ---

func (c *tcluster) servers(ids ...string) []ringmeta.Server {
	var out []ringmeta.Server
	for _, id := range ids {
		out = append(out, ringmeta.Server{ID: id, Addr: c.node(id).addr, State: ringmeta.StateActive})
	}
	return out
}

// publishInitial publishes epoch 1: every partition's chain is members, in
// that order, at version 1. Every node of the cluster is listed as a server.
func (c *tcluster) publishInitial(members ...string) *ringmeta.Ring {
	c.t.Helper()
	c.mu.Lock()
	ids := make([]string, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	slices.Sort(ids)
	r := &ringmeta.Ring{
		Epoch: 1, Partitions: testPartitions, Replicas: 3,
		Limits:  ringmeta.Limits{MaxKeyBytes: 64, MaxValueBytes: 4096},
		Servers: c.servers(ids...),
		Chains:  make([]ringmeta.Chain, testPartitions),
	}
	for p := range r.Chains {
		r.Chains[p] = ringmeta.Chain{Members: slices.Clone(members), Version: 1}
	}
	c.put(r)
	return r
}

// publish publishes the next epoch: a clone of the last ring changed by
// mutate, with every changed chain's version bumped (as the ECS does).
func (c *tcluster) publish(mutate func(r *ringmeta.Ring)) *ringmeta.Ring {
	c.t.Helper()
	c.mu.Lock()
	prev := c.ring
	c.mu.Unlock()
	next := prev.Clone()
	next.Epoch++
	mutate(next)
	for p := range next.Chains {
		o, n := prev.Chains[p], &next.Chains[p]
		if !slices.Equal(o.Members, n.Members) || o.Learner != n.Learner {
			n.Version = o.Version + 1
		}
	}
	c.put(next)
	return next
}

func (c *tcluster) put(r *ringmeta.Ring) {
	c.t.Helper()
	require.NoError(c.t, r.Validate())
	raw, err := r.Marshal()
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.cli.Put(ctx, etcdkeys.Ring(c.name), string(raw))
	require.NoError(c.t, err)
	c.mu.Lock()
	c.ring = r
	c.mu.Unlock()
}

func (c *tcluster) curRing() *ringmeta.Ring {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring
}

// setAll sets every partition's chain to members (no learner).
func setAll(members ...string) func(r *ringmeta.Ring) {
	return func(r *ringmeta.Ring) {
		for p := range r.Chains {
			r.Chains[p] = ringmeta.Chain{Members: slices.Clone(members), Version: r.Chains[p].Version}
		}
	}
}

// waitEpoch waits until every listed server adopted epoch.
func (c *tcluster) waitEpoch(epoch uint64, ids ...string) {
	c.t.Helper()
	testutil.Eventually(c.t, 10*time.Second, 20*time.Millisecond, func() bool {
		for _, id := range ids {
			if c.srv(id).appliedEpoch() < epoch {
				return false
			}
		}
		return true
	}, "servers %v did not apply epoch %d", ids, epoch)
}

// --- keys ---

// keysIn returns n distinct keys of partition p, prefix-i style.
func keysIn(p, n int, prefix string) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if ringmeta.Partition(ringmeta.KeyHash(nil, []byte(k)), testPartitions) == p {
			out = append(out, k)
		}
	}
	return out
}

func partOf(key string) int {
	return ringmeta.Partition(ringmeta.KeyHash(nil, []byte(key)), testPartitions)
}

// --- a retrying test client ---

// tclient routes by the test's last published ring (a client that refreshes
// at once) and retries a write with the same request id until it gets an
// answer, as kvclient does.
type tclient struct {
	c   *tcluster
	id  uint64
	seq atomic.Uint64
}

var clientIDs atomic.Uint64

func (c *tcluster) client() *tclient {
	return &tclient{c: c, id: 1000 + clientIDs.Add(1)}
}

// header returns a new request id for a write.
func (w *tclient) header() *kvpb.RequestHeader {
	return &kvpb.RequestHeader{ClientId: w.id, Seq: w.seq.Add(1)}
}

// outcome reports whether resp/err is a final answer to the caller.
func outcome(resp *kvpb.Response, err error) bool {
	if err != nil {
		switch status.Code(err) {
		case codes.InvalidArgument, codes.ResourceExhausted, codes.Unimplemented:
			return true
		}
		return false
	}
	switch resp.Status {
	case kvpb.Status_SUCCESS, kvpb.Status_UPDATE, kvpb.Status_NOT_FOUND,
		kvpb.Status_CONDITION_FAILED, kvpb.Status_NOT_AN_INTEGER, kvpb.Status_OVERFLOW:
		return true
	}
	return false
}

// do retries call (given the target's id and the routing ring) until it
// returns an outcome or ctx ends. tries counts attempts.
func (w *tclient) do(ctx context.Context, route func(r *ringmeta.Ring) string,
	call func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error)) (*kvpb.Response, error) {
	var lastErr error
	for {
		r := w.c.curRing()
		id := route(r)
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := call(actx, w.c.kv(id), r)
		cancel()
		if outcome(resp, err) {
			return resp, err
		}
		if err == nil {
			err = fmt.Errorf("%s: %s: %s", id, resp.Status, resp.Message)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func headOf(key string) func(r *ringmeta.Ring) string {
	return func(r *ringmeta.Ring) string { return r.Chain(partOf(key)).Head() }
}

func tailOf(key string) func(r *ringmeta.Ring) string {
	return func(r *ringmeta.Ring) string { return r.Chain(partOf(key)).Tail() }
}

// withVersion returns a copy of h routed by r (h may be shared by retries).
func withVersion(h *kvpb.RequestHeader, r *ringmeta.Ring, key string) *kvpb.RequestHeader {
	return &kvpb.RequestHeader{
		ClientId: h.ClientId, Seq: h.Seq, Epoch: r.Epoch, ChainVersion: r.Chain(partOf(key)).Version,
	}
}

// putH writes key=val with request header h (kept across retries).
func (w *tclient) putH(ctx context.Context, h *kvpb.RequestHeader, key, val string, ttlMs int64) (kvpb.Status, error) {
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Put(ctx, &kvpb.PutRequest{Header: withVersion(h, r, key), Key: []byte(key), Value: []byte(val), TtlMs: ttlMs})
	})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

func (w *tclient) put(ctx context.Context, key, val string) (kvpb.Status, error) {
	return w.putH(ctx, w.header(), key, val, 0)
}

func (w *tclient) del(ctx context.Context, key string) (kvpb.Status, error) {
	h := w.header()
	resp, err := w.do(ctx, headOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Delete(ctx, &kvpb.DeleteRequest{Header: withVersion(h, r, key), Key: []byte(key)})
	})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

// get reads key at the tail; found reports SUCCESS vs NOT_FOUND.
func (w *tclient) get(ctx context.Context, key string) (val string, found bool, err error) {
	resp, err := w.do(ctx, tailOf(key), func(ctx context.Context, kv kvpb.KVClient, r *ringmeta.Ring) (*kvpb.Response, error) {
		return kv.Get(ctx, &kvpb.GetRequest{Header: withVersion(&kvpb.RequestHeader{}, r, key), Key: []byte(key)})
	})
	if err != nil {
		return "", false, err
	}
	return string(resp.Value), resp.Status == kvpb.Status_SUCCESS, nil
}

// mustPut writes and fails the test on error.
func (w *tclient) mustPut(t testing.TB, key, val string) kvpb.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := w.put(ctx, key, val)
	require.NoError(t, err, "put %s", key)
	return st
}

func (w *tclient) mustGet(t testing.TB, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, ok, err := w.get(ctx, key)
	require.NoError(t, err, "get %s", key)
	return v, ok
}

// --- digests ---

// digest returns server id's digests of the given partitions (explicitly
// listed, so non-members answer too).
func (c *tcluster) digest(id string, parts ...int) map[int]*kvpb.PartitionDigest {
	c.t.Helper()
	req := &kvpb.DigestRequest{}
	for _, p := range parts {
		req.Partitions = append(req.Partitions, uint32(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.admin(id).Digest(ctx, req)
	require.NoError(c.t, err)
	out := map[int]*kvpb.PartitionDigest{}
	for _, d := range resp.Partitions {
		out[int(d.Partition)] = d
	}
	return out
}

func allPartitions() []int {
	ps := make([]int, testPartitions)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// diffDigests describes how members' digests of parts differ ("" = equal).
func (c *tcluster) diffDigests(members []string, parts []int) string {
	ds := make([]map[int]*kvpb.PartitionDigest, len(members))
	for i, id := range members {
		ds[i] = c.digest(id, parts...)
	}
	var b strings.Builder
	for _, p := range parts {
		a := ds[0][p]
		for i := 1; i < len(members); i++ {
			d := ds[i][p]
			if a.GetAppliedSeq() != d.GetAppliedSeq() || a.GetHash() != d.GetHash() || a.GetKeys() != d.GetKeys() {
				fmt.Fprintf(&b, "p%d: %s seq=%d keys=%d hash=%x vs %s seq=%d keys=%d hash=%x; ", p,
					members[0], a.GetAppliedSeq(), a.GetKeys(), a.GetHash(), members[i], d.GetAppliedSeq(), d.GetKeys(), d.GetHash())
			}
		}
	}
	return b.String()
}

// waitConverged waits until members hold equal digests of parts. On failure
// it logs each member's replica state of the partitions that differ.
func (c *tcluster) waitConverged(members []string, parts []int, timeout time.Duration) {
	c.t.Helper()
	var diff string
	if testutil.WaitUntil(timeout, 20*time.Millisecond, func() bool {
		diff = c.diffDigests(members, parts)
		return diff == ""
	}) {
		return
	}
	for _, p := range parts {
		if strings.Contains(diff, fmt.Sprintf("p%d:", p)) {
			for _, id := range members {
				c.t.Logf("%s p%d: %s", id, p, c.srv(id).partSummary(p))
			}
		}
	}
	c.t.Fatalf("digests of %v never converged in %v: %s", members, timeout, diff)
}

// partSummary describes this server's replica state of p, for test failures.
func (s *Server) partSummary(p int) string {
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	in, _ := s.core.node.Info(p)
	return fmt.Sprintf("%+v", in)
}

// stringer formats *p when printed, so a failure message shows the last
// value a polling loop saw.
type stringer struct{ p *string }

func (s *stringer) String() string { return *s.p }
