package opclient

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// digestServer is a kvserver's Admin service with digests set by the test.
type digestServer struct {
	kvpb.UnimplementedAdminServer
	id    string
	mu    sync.Mutex // guards parts and calls
	parts map[uint32]*kvpb.PartitionDigest
	calls int
	// after, when set, replaces parts after the first call (a write in
	// flight that reaches every member).
	after map[uint32]*kvpb.PartitionDigest
}

func (d *digestServer) Digest(_ context.Context, in *kvpb.DigestRequest) (*kvpb.DigestResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	resp := &kvpb.DigestResponse{Id: d.id}
	for p, dg := range d.parts {
		if len(in.GetPartitions()) == 0 || containsU32(in.GetPartitions(), p) {
			resp.Partitions = append(resp.Partitions, dg)
		}
	}
	if d.calls++; d.after != nil {
		d.parts, d.after = d.after, nil
	}
	return resp, nil
}

func containsU32(list []uint32, x uint32) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

func serveDigests(t *testing.T, d *digestServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	kvpb.RegisterAdminServer(gs, d)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func digests(seqHash ...uint64) map[uint32]*kvpb.PartitionDigest {
	m := map[uint32]*kvpb.PartitionDigest{}
	for i := 0; i+1 < len(seqHash); i += 2 {
		p := uint32(i / 2)
		m[p] = &kvpb.PartitionDigest{Partition: p, AppliedSeq: seqHash[i], Hash: seqHash[i+1], Keys: seqHash[i]}
	}
	return m
}

// checkRing is a ring of active servers with one chain (version 1) per
// members list; the tests set the addresses.
func checkRing(replicas int, servers []string, chains ...[]string) *ringmeta.Ring {
	r := &ringmeta.Ring{Epoch: 3, Partitions: len(chains), Replicas: replicas,
		Limits: ringmeta.Limits{MaxKeyBytes: 1024, MaxValueBytes: 1024}}
	for _, id := range servers {
		r.Servers = append(r.Servers, ringmeta.Server{ID: id, State: ringmeta.StateActive})
	}
	for _, members := range chains {
		r.Chains = append(r.Chains, ringmeta.Chain{Members: members, Version: 1})
	}
	return r
}

func TestCheck(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		servers map[string]*digestServer
		kinds   []string // per difference, in partition order
	}{
		{name: "clean", servers: map[string]*digestServer{
			"s1": {parts: digests(5, 0xa, 0, 0xe)}, "s2": {parts: digests(5, 0xa, 0, 0xe)}, "s3": {parts: digests(5, 0xa)},
		}},
		{name: "hash and seq differ", servers: map[string]*digestServer{
			"s1": {parts: digests(5, 0xa, 3, 0xe)}, "s2": {parts: digests(5, 0xb, 4, 0xe)}, "s3": {parts: digests(5, 0xa)},
		}, kinds: []string{"hash", "seq"}},
		{name: "member lacks a partition with data", servers: map[string]*digestServer{
			"s1": {parts: digests(5, 0xa, 0, 0xe)}, "s2": {parts: digests(5, 0xa)}, "s3": {parts: map[uint32]*kvpb.PartitionDigest{}},
		}, kinds: []string{"missing"}},
		{name: "write in flight settles", servers: map[string]*digestServer{
			"s1": {parts: digests(6, 0xc, 0, 0xe)}, "s2": {parts: digests(5, 0xa, 0, 0xe), after: digests(6, 0xc, 0, 0xe)},
			"s3": {parts: digests(6, 0xc)},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster := "c" + string(rune('a'+i))
			r := checkRing(3, []string{"s1", "s2", "s3"},
				[]string{"s1", "s2", "s3"}, // partition 0 on all three
				[]string{"s1", "s2"})       // partition 1 on s1 and s2
			for j, s := range r.Servers {
				tt.servers[s.ID].id = s.ID
				r.Servers[j].Addr = serveDigests(t, tt.servers[s.ID])
			}
			b, err := r.Marshal()
			require.NoError(t, err)
			_, err = cli.Put(ctx, etcdkeys.Ring(cluster), string(b))
			require.NoError(t, err)

			rep, err := Check(ctx, cli, cluster, CheckOptions{RetryDelay: time.Millisecond})
			require.NoError(t, err)
			require.Equal(t, 2, rep.Partitions)
			require.Equal(t, 3, rep.Servers)
			var kinds []string
			for _, d := range rep.Differences {
				kinds = append(kinds, d.Kind)
				require.NotEmpty(t, d.String())
			}
			require.Equal(t, tt.kinds, kinds)
		})
	}
}

func TestCheckErrors(t *testing.T) {
	cli, _ := testutil.StartEtcd(t)
	ctx := context.Background()
	_, err := Check(ctx, cli, "none", CheckOptions{})
	require.ErrorIs(t, err, ErrNoCluster)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := lis.Addr().String()
	require.NoError(t, lis.Close())
	r := checkRing(1, []string{"s1", "s2"}, []string{"s1"})
	r.Servers[0].Addr = dead
	r.Servers[1].State = ringmeta.StateDown
	b, err := r.Marshal()
	require.NoError(t, err)
	_, err = cli.Put(ctx, etcdkeys.Ring("c"), string(b))
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = Check(cctx, cli, "c", CheckOptions{})
	require.ErrorContains(t, err, "digest of s1")
}
