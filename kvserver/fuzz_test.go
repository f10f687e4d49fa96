package kvserver

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Fuzz targets for every request a server decodes from outside: the client
// API (Put, Get, Delete, KeyRange, Login; checkKV is their validator), the
// Batch stream (fuzz_batch_test.go) and the replication service (batches,
// snapshot and lease requests). The network targets run against one real
// server on the package's etcd.

func FuzzCheckKV(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), int64(0))
	f.Add([]byte{}, []byte{}, int64(-1))
	f.Add(make([]byte, 65), []byte("v"), int64(10))
	f.Add([]byte("k"), []byte("v"), int64(MaxTTLMs))
	f.Add([]byte("k"), []byte("v"), int64(MaxTTLMs+1))
	f.Add([]byte("k"), []byte("v"), int64(math.MaxInt64))
	lim := ringmeta.Limits{MaxKeyBytes: 64, MaxValueBytes: 4096}
	f.Fuzz(func(t *testing.T, key, value []byte, ttl int64) {
		err := checkKV(lim, key, value, ttl)
		bad := len(key) == 0 || len(key) > lim.MaxKeyBytes || len(value) > lim.MaxValueBytes || ttl < 0 || ttl > MaxTTLMs
		if bad != (err != nil) {
			t.Fatalf("checkKV(%d-byte key, %d-byte value, ttl %d) = %v", len(key), len(value), ttl, err)
		}
		if err != nil && status.Code(toStatus(err)) != codes.InvalidArgument {
			t.Fatalf("checkKV error %v maps to %v, want InvalidArgument", err, status.Code(toStatus(err)))
		}
	})
}

// fuzzServer starts one server heading and tailing every partition.
func fuzzServer(f *testing.F) (*tcluster, *ringmeta.Ring) {
	c := newCluster(f, 1)
	r := c.publishInitial("s1")
	c.waitEpoch(r.Epoch, "s1")
	return c, r
}

// FuzzScopedClientID: a request id stays what identifies one client's
// writes: internal writes (client 0) stay unscoped, no scoped id is 0 (it
// would mark an internal write), the empty namespace keeps the client's
// own id, and the same inputs give the same id.
func FuzzScopedClientID(f *testing.F) {
	f.Add([]byte("alice"), uint64(1))
	f.Add([]byte{}, uint64(0))
	f.Add([]byte("0123456789abcdef"), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, ns []byte, client uint64) {
		id := scopedClientID(ns, client)
		switch {
		case client == 0 && id != 0:
			t.Fatalf("internal write scoped to %d", id)
		case client != 0 && id == 0:
			t.Fatalf("client %d in %q scoped to 0", client, ns)
		case len(ns) == 0 && id != client:
			t.Fatalf("empty namespace changed client %d to %d", client, id)
		case id != scopedClientID(ns, client):
			t.Fatal("not deterministic")
		}
	})
}

// FuzzOpTimeout: a Batch operation's timeout_ms becomes no deadline or
// one in (0, maxOpTimeout], never a negative or overflowed one.
func FuzzOpTimeout(f *testing.F) {
	for _, ms := range []int64{0, -1, 1, 3_600_000, 3_600_001, math.MaxInt64, math.MinInt64, math.MaxInt64 / 1000} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		d := opTimeout(ms)
		switch {
		case ms <= 0 && d != 0:
			t.Fatalf("timeout_ms %d gave deadline %v", ms, d)
		case ms > 0 && (d <= 0 || d > maxOpTimeout):
			t.Fatalf("timeout_ms %d gave %v, want (0, %v]", ms, d, maxOpTimeout)
		case ms > 0 && ms <= maxOpTimeout.Milliseconds() && d != time.Duration(ms)*time.Millisecond:
			t.Fatalf("timeout_ms %d gave %v", ms, d)
		}
	})
}

func FuzzKVRequests(f *testing.F) {
	c, r := fuzzServer(f)
	kv := c.kv("s1")
	f.Add(uint8(0), []byte("key"), []byte("value"), int64(0), uint64(1), uint64(1), uint64(7), uint64(1), "", false)
	f.Add(uint8(1), []byte("key"), []byte{}, int64(0), uint64(0), uint64(0), uint64(0), uint64(0), "tok", true)
	f.Add(uint8(2), []byte{}, []byte{}, int64(-5), uint64(99), uint64(3), uint64(1), uint64(2), "", false)
	f.Add(uint8(3), []byte{0xff}, []byte{}, int64(0), uint64(0), uint64(0), uint64(0), uint64(0), "", false)
	// A write id names one write: a second write under an id the head has
	// seen gets the first one's answer (DESIGN §4 idempotence), so only
	// writes with fresh ids are read back.
	seen := map[[2]uint64]bool{}
	f.Fuzz(func(t *testing.T, kind uint8, key, value []byte, ttl int64, epoch, cv, cid, seq uint64, token string, anyMember bool) {
		// Epochs past the server's would make it wait for a ring that never
		// comes; keep them near the real one.
		epoch %= r.Epoch + 2
		token = strings.ToValidUTF8(token, "") // proto strings are UTF-8: the client refuses others
		h := &kvpb.RequestHeader{Epoch: epoch, ChainVersion: cv, ClientId: cid, Seq: seq, Token: token}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var resp *kvpb.Response
		var err error
		fresh := !seen[[2]uint64{cid, seq}]
		if kind%4 == 0 || kind%4 == 2 {
			seen[[2]uint64{cid, seq}] = true
		}
		switch kind % 4 {
		case 0:
			resp, err = kv.Put(ctx, &kvpb.PutRequest{Header: h, Key: key, Value: value, TtlMs: ttl})
		case 1:
			resp, err = kv.Get(ctx, &kvpb.GetRequest{Header: h, Key: key, AnyMember: anyMember})
		case 2:
			resp, err = kv.Delete(ctx, &kvpb.DeleteRequest{Header: h, Key: key})
		default:
			_, err = kv.KeyRange(ctx, &kvpb.KeyRangeRequest{})
			if err == nil {
				_, err = kv.KeyRangeRead(ctx, &kvpb.KeyRangeRequest{})
			}
		}
		if err != nil {
			switch status.Code(err) {
			case codes.InvalidArgument, codes.Unauthenticated, codes.FailedPrecondition:
				return
			}
			t.Fatalf("op %d: unexpected error %v", kind%4, err)
		}
		bad := false
		switch kind % 4 {
		case 0:
			bad = checkKV(r.Limits, key, value, ttl) != nil
		case 1, 2:
			bad = checkKV(r.Limits, key, nil, 0) != nil
		}
		if bad && resp != nil && (resp.Status == kvpb.Status_SUCCESS || resp.Status == kvpb.Status_UPDATE) {
			t.Fatalf("op %d on invalid input (%d-byte key, %d-byte value, ttl %d) answered %v", kind%4, len(key), len(value), ttl, resp.Status)
		}
		if kind%4 == 0 && fresh && !bad && ttl == 0 && (resp.Status == kvpb.Status_SUCCESS || resp.Status == kvpb.Status_UPDATE) {
			got, err := kv.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{}, Key: key})
			if err != nil || got.Status != kvpb.Status_SUCCESS || string(got.Value) != string(value) {
				t.Fatalf("put %q answered %v but get returns %v, %v", key, resp.Status, got, err)
			}
		}
	})
}

func FuzzLoginRequest(f *testing.F) {
	c, _ := fuzzServer(f)
	kv := c.kv("s1")
	f.Add("alice", "pw")
	f.Add("", "")
	f.Add("a\x00b", "\xff")
	f.Fuzz(func(t *testing.T, user, password string) {
		user, password = strings.ToValidUTF8(user, ""), strings.ToValidUTF8(password, "")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := kv.Login(ctx, &kvpb.LoginRequest{User: user, Password: password})
		// The cluster has no authentication: every login is refused, with
		// a reason, never with an internal error.
		if err == nil || status.Code(err) == codes.Internal || status.Code(err) == codes.Unknown {
			t.Fatalf("login(%q) on a cluster without authentication: %v", user, err)
		}
	})
}

func FuzzReplicationRequests(f *testing.F) {
	c, r := fuzzServer(f)
	s := c.srv("s1")
	repl := kvpb.NewReplicationClient(c.conn("s1"))
	seed, _ := proto.Marshal(&kvpb.ReplBatch{From: "s2", Msgs: []*kvpb.ChainMsg{
		{Kind: 1, Partition: 1, ChainVersion: 1, Entries: []*kvpb.Update{{Seq: 1, Ops: []*kvpb.Op{{Key: []byte("k"), Value: []byte("v")}}}}},
		{Kind: 2, Partition: 3, ChainVersion: 1, Seq: 9}, {Kind: 3, Partition: 99, Seq: 1}, {Kind: 4, Partition: 2, Seq: 5},
		{Kind: 7, Epoch: 1, ReqToken: 1}, {Kind: 8, Granted: true, LeaseNs: 1 << 62, ReqToken: 1}, {Kind: 6, Partition: 1}}})
	f.Add(seed, "s2", uint32(1), r.Epoch)
	f.Add([]byte{}, "", uint32(1<<31), uint64(0))
	f.Fuzz(func(t *testing.T, batch []byte, from string, partition uint32, epoch uint64) {
		from = strings.ToValidUTF8(from, "")
		var b kvpb.ReplBatch
		if proto.Unmarshal(batch, &b) == nil {
			s.onBatches([]*kvpb.ReplBatch{&b})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := repl.Snapshot(ctx, &kvpb.SnapshotRequest{From: from, Partition: partition, Epoch: epoch})
		if err == nil {
			for err == nil {
				_, err = st.Recv()
			}
			if !errors.Is(err, io.EOF) {
				switch status.Code(err) {
				case codes.InvalidArgument, codes.FailedPrecondition:
				default:
					t.Fatalf("snapshot of %d for %q: %v", partition, from, err)
				}
			}
		}
		// Whatever came in, the server still serves its own chain.
		resp, err := c.kv("s1").Put(ctx, &kvpb.PutRequest{Header: &kvpb.RequestHeader{}, Key: []byte("alive"), Value: batch[:min(len(batch), 16)]})
		if err != nil || (resp.Status != kvpb.Status_SUCCESS && resp.Status != kvpb.Status_UPDATE) {
			t.Fatalf("put after replication input: %v %v", resp, err)
		}
	})
}
