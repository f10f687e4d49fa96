package kvserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
)

// benchChain starts three servers in this process with every partition on
// the chain s1 -> s2 -> s3 (WAL synced, as in production).
func benchChain(b *testing.B) *tcluster {
	b.Helper()
	c := newCluster(b, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	c.client().mustPut(b, "warm-up", "v") // past the first read leases and holdbacks
	return c
}

// BenchmarkChainBatch sends one Batch message of n puts to the head and
// waits for every answer: each put is applied, synced and passed down the
// chain, and answered once the tail acknowledged it.
func BenchmarkChainBatch(b *testing.B) {
	c := benchChain(b)
	val := make([]byte, 1024)
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("puts=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := c.kv("s1").Batch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var seq uint64
			b.ReportAllocs()
			for b.Loop() {
				ops := make([]*kvpb.BatchOp, n)
				for i := range ops {
					seq++
					ops[i] = &kvpb.BatchOp{Id: seq, Op: &kvpb.BatchOp_Put{Put: &kvpb.PutRequest{
						Header: &kvpb.RequestHeader{ClientId: 1, Seq: seq}, Key: fmt.Appendf(nil, "k%d", seq%4096), Value: val,
					}}}
				}
				if err := stream.Send(&kvpb.BatchRequest{Ops: ops}); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < n; {
					msg, err := stream.Recv()
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range msg.Results {
						if r.Code != 0 {
							b.Fatalf("put: %s", r.Error)
						}
					}
					got += len(msg.Results)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// BenchmarkClient runs the library against the in-process chain: 50
// concurrent callers (as kvbench does), on the Batch stream and on unary
// calls, for puts and gets of 1 KiB values.
func BenchmarkClient(b *testing.B) {
	c := benchChain(b)
	for _, tr := range []struct {
		name string
		opts []kvclient.Option
	}{
		{"batch", nil},
		{"unary", []kvclient.Option{kvclient.WithUnaryCalls()}},
	} {
		cfg := config.DefaultClient()
		cfg.Servers = []string{c.node("s1").addr}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cl, err := kvclient.New(ctx, cfg, tr.opts...)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		val := make([]byte, 1024)
		const keys = 4096
		for i := range keys {
			if _, err := cl.Put(context.Background(), fmt.Sprintf("k%d", i), val); err != nil {
				b.Fatal(err)
			}
		}
		for _, op := range []string{"put", "get"} {
			b.Run(tr.name+"/"+op, func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(25) // 50 callers on 2 cores
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						k := fmt.Sprintf("k%d", n.Add(1)%keys)
						var err error
						if op == "put" {
							_, err = cl.Put(context.Background(), k, val)
						} else {
							_, err = cl.Get(context.Background(), k)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
		_ = cl.Close()
	}
}
