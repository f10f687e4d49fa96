package kvserver

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// FuzzBatchRequests feeds decoded Batch stream messages to a real server:
// whatever the ops hold (no operation, duplicate ids, odd deadlines, bad
// headers), every op gets exactly one result under its own id, carrying a
// response or an error code, and the stream ends cleanly.
func FuzzBatchRequests(f *testing.F) {
	c, r := fuzzServer(f)
	kv := c.kv("s1")
	h := &kvpb.RequestHeader{Epoch: r.Epoch, ClientId: 9, Seq: 1}
	for _, req := range []*kvpb.BatchRequest{
		{Ops: []*kvpb.BatchOp{bput(h, "k", "v", 0), bget(h, "k"), bdel(h, "k")}},
		{Ops: []*kvpb.BatchOp{{Id: 7}, {Id: 7, TimeoutMs: -1}, bget(&kvpb.RequestHeader{Epoch: 1 << 40}, "")}},
		{Ops: []*kvpb.BatchOp{bput(h, "", "v", -5), {Id: 1, TimeoutMs: 1 << 62}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req kvpb.BatchRequest
		if proto.Unmarshal(data, &req) != nil || len(req.Ops) > 64 {
			return
		}
		var want []uint64
		for _, op := range req.Ops {
			if op == nil {
				return // not something the wire can carry
			}
			// Epochs past the server's would make it wait for a ring that
			// never comes; keep them near the real one.
			for _, hd := range []*kvpb.RequestHeader{op.GetPut().GetHeader(), op.GetGet().GetHeader(), op.GetDelete().GetHeader()} {
				if hd != nil {
					hd.Epoch %= r.Epoch + 2
				}
			}
			want = append(want, op.Id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := kv.Batch(ctx)
		if err != nil {
			t.Fatalf("open stream: %v", err)
		}
		if err := stream.Send(&req); err != nil {
			t.Fatalf("send: %v", err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatalf("close send: %v", err)
		}
		var got []uint64
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("stream failed (%v) after %d of %d results", err, len(got), len(want))
			}
			for _, res := range msg.Results {
				if res.Response == nil && codes.Code(res.Code) == codes.OK {
					t.Fatalf("op %d: a result with neither response nor error", res.Id)
				}
				if res.Response == nil && status.Code(status.Error(codes.Code(res.Code), res.Error)) == codes.Internal {
					t.Fatalf("op %d: internal error %q", res.Id, res.Error)
				}
				got = append(got, res.Id)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("results for ids %v, want one per op %v", got, want)
		}
	})
}
