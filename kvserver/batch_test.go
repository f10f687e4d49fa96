package kvserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// batch sends ops to server id in one message on a new Batch stream and
// returns their results in the order of ops.
func (c *tcluster) batch(t *testing.T, id string, ops ...*kvpb.BatchOp) []*kvpb.BatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.kv(id).Batch(ctx)
	require.NoError(t, err)
	for i, op := range ops {
		op.Id = uint64(i + 1)
	}
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: ops}))
	require.NoError(t, stream.CloseSend())
	out := make([]*kvpb.BatchResult, len(ops))
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		for _, r := range msg.Results {
			require.Nil(t, out[r.Id-1], "one result per op")
			out[r.Id-1] = r
		}
	}
	for i, r := range out {
		require.NotNil(t, r, "op %d has a result", i)
	}
	return out
}

// settled reports whether resp is not a transient "retry shortly" answer
// (a read lease lapsing on a loaded machine).
func settled(resp *kvpb.Response) bool {
	switch resp.GetStatus() {
	case kvpb.Status_SERVER_NOT_READY, kvpb.Status_SERVER_WRITE_LOCK:
		return false
	}
	return true
}

// batchSettled is batch, repeated (same ops, so writes keep their request
// ids) until no result is transient.
func (c *tcluster) batchSettled(t *testing.T, id string, ops ...*kvpb.BatchOp) []*kvpb.BatchResult {
	t.Helper()
	var out []*kvpb.BatchResult
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		out = c.batch(t, id, ops...)
		for _, r := range out {
			if r.Code == 0 && !settled(r.Response) {
				return false
			}
		}
		return true
	})
	return out
}

// unarySettled is unary, repeated until the answer is not transient.
func (c *tcluster) unarySettled(t *testing.T, id string, op *kvpb.BatchOp) (resp *kvpb.Response, err error) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		resp, err = c.unary(id, op)
		return err != nil || settled(resp)
	})
	return resp, err
}

// unary runs op as the unary RPC of its kind, at server id.
func (c *tcluster) unary(id string, op *kvpb.BatchOp) (*kvpb.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv := c.kv(id)
	switch {
	case op.GetPut() != nil:
		return kv.Put(ctx, op.GetPut())
	case op.GetDelete() != nil:
		return kv.Delete(ctx, op.GetDelete())
	}
	return kv.Get(ctx, op.GetGet())
}

func bput(h *kvpb.RequestHeader, key, val string, ttlMs int64) *kvpb.BatchOp {
	return &kvpb.BatchOp{Op: &kvpb.BatchOp_Put{Put: &kvpb.PutRequest{Header: h, Key: []byte(key), Value: []byte(val), TtlMs: ttlMs}}}
}

func bget(h *kvpb.RequestHeader, key string) *kvpb.BatchOp {
	return &kvpb.BatchOp{Op: &kvpb.BatchOp_Get{Get: &kvpb.GetRequest{Header: h, Key: []byte(key)}}}
}

func bdel(h *kvpb.RequestHeader, key string) *kvpb.BatchOp {
	return &kvpb.BatchOp{Op: &kvpb.BatchOp_Delete{Delete: &kvpb.DeleteRequest{Header: h, Key: []byte(key)}}}
}

// TestBatchMatchesUnary runs the same steps through the unary RPCs and the
// Batch stream (on keys of their own) and requires the same answers.
func TestBatchMatchesUnary(t *testing.T) {
	c := newCluster(t, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	w := c.client()
	long := strings.Repeat("k", 65)
	big := strings.Repeat("v", 4097)
	steps := []struct {
		name   string
		server string
		op     func(key string) *kvpb.BatchOp
	}{
		{"put new", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k, "v1", 0) }},
		{"put again", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k, "v2", 0) }},
		{"get at tail", "s3", func(k string) *kvpb.BatchOp { return bget(nil, k) }},
		{"get at head", "s1", func(k string) *kvpb.BatchOp { return bget(nil, k) }},
		{"put at tail", "s3", func(k string) *kvpb.BatchOp { return bput(w.header(), k, "v", 0) }},
		{"get missing", "s3", func(k string) *kvpb.BatchOp { return bget(nil, k+"-missing") }},
		{"delete", "s1", func(k string) *kvpb.BatchOp { return bdel(w.header(), k) }},
		{"delete again", "s1", func(k string) *kvpb.BatchOp { return bdel(w.header(), k) }},
		{"get deleted", "s3", func(k string) *kvpb.BatchOp { return bget(nil, k) }},
		{"put with ttl", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k+"-ttl", "t", 1) }},
		{"negative ttl", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k, "t", -1) }},
		{"ttl that overflows", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k, "t", math.MaxInt64-1000) }},
		{"get after refused puts", "s3", func(k string) *kvpb.BatchOp { return bget(nil, k) }},
		{"timeout that overflows", "s1", func(k string) *kvpb.BatchOp {
			op := bput(w.header(), k+"-long", "v", 0)
			op.TimeoutMs = math.MaxInt64
			return op
		}},
		{"key too large", "s1", func(string) *kvpb.BatchOp { return bput(w.header(), long, "v", 0) }},
		{"value too large", "s1", func(k string) *kvpb.BatchOp { return bput(w.header(), k, big, 0) }},
		{"empty key", "s3", func(string) *kvpb.BatchOp { return bget(nil, "") }},
		{"stale chain version", "s1", func(k string) *kvpb.BatchOp {
			return bput(&kvpb.RequestHeader{ClientId: 5, Seq: 1, ChainVersion: 99}, k, "v", 0)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			uresp, uerr := c.unarySettled(t, st.server, st.op("unary"))
			res := c.batchSettled(t, st.server, st.op("batch"))[0]
			require.Equal(t, status.Code(uerr), codes.Code(res.Code), "code (unary error %v, batch %q)", uerr, res.Error)
			if uerr != nil {
				require.Equal(t, status.Convert(uerr).Message(), res.Error)
				require.Nil(t, res.Response)
				return
			}
			require.Equal(t, uresp.Status, res.Response.Status)
			require.Equal(t, uresp.Epoch, res.Response.Epoch)
			require.Equal(t, string(uresp.Value), string(res.Response.Value))
		})
	}
	t.Run("ttl expires", func(t *testing.T) {
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			res := c.batchSettled(t, "s3", bget(nil, "batch-ttl"))[0]
			return res.Response.GetStatus() == kvpb.Status_NOT_FOUND
		})
	})
	t.Run("unknown op", func(t *testing.T) {
		res := c.batch(t, "s1", &kvpb.BatchOp{})[0]
		require.Equal(t, codes.InvalidArgument, codes.Code(res.Code), res.Error)
	})
}

// TestBatchManyOps sends many writes and reads in one message: each gets
// its own answer, and a retried write (same request id) is applied once.
func TestBatchManyOps(t *testing.T) {
	c := newCluster(t, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	w := c.client()
	const n = 300
	var ops []*kvpb.BatchOp
	for i := range n {
		ops = append(ops, bput(w.header(), fmt.Sprintf("k%d", i), fmt.Sprint(i), 0))
	}
	retry := ops[0].GetPut().Header
	ops = append(ops, bput(retry, "k0", "0", 0))
	for _, res := range c.batchSettled(t, "s1", ops...) {
		require.Zero(t, res.Code, res.Error)
		require.Equal(t, kvpb.Status_SUCCESS, res.Response.Status, "id %d", res.Id)
	}
	var gets []*kvpb.BatchOp
	for i := range n {
		gets = append(gets, bget(nil, fmt.Sprintf("k%d", i)))
	}
	got := c.batchSettled(t, "s3", gets...)
	vals := make([]string, n)
	for i, res := range got {
		vals[i] = string(res.Response.GetValue())
	}
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprint(i)
	}
	require.True(t, slices.Equal(want, vals))
}

// TestBatchAuthNamespaces: the stream checks tokens and keeps each user's
// keys apart, as the unary RPCs do.
func TestBatchAuthNamespaces(t *testing.T) {
	c := newAuthCluster(t, nil)
	alice, err := c.login(t, "s2", "alice", "alice-pw")
	require.NoError(t, err)
	bob, err := c.login(t, "s3", "bob", "bob-pw")
	require.NoError(t, err)
	hdr := func(tok string) *kvpb.RequestHeader {
		return &kvpb.RequestHeader{Token: tok, ClientId: 9, Seq: uint64(time.Now().UnixNano())}
	}
	// The partition depends on the namespace: ask the head of every chain
	// (all are s1 here) and the tail (s3).
	res := c.batchSettled(t, "s1", bput(hdr(alice), "secret", "a", 0))[0]
	require.Zero(t, res.Code, res.Error)
	require.Equal(t, kvpb.Status_SUCCESS, res.Response.Status)

	got := c.batchSettled(t, "s3", bget(hdr(alice), "secret"), bget(hdr(bob), "secret"), bget(hdr(""), "secret"))
	require.Equal(t, "a", string(got[0].Response.GetValue()))
	require.Equal(t, kvpb.Status_NOT_FOUND, got[1].Response.GetStatus(), "bob does not see alice's key")
	require.Equal(t, codes.Unauthenticated, codes.Code(got[2].Code), got[2].Error)
	_, uerr := c.kvAs(t, "", "secret", nil, false)
	require.Equal(t, status.Convert(uerr).Message(), got[2].Error, "the same error as the unary RPC")
}

// TestBatchStreamEndsAtStop: an open Batch stream does not hold Stop; the
// client sees Unavailable (its library retries elsewhere).
func TestBatchStreamEndsAtStop(t *testing.T) {
	c := newCluster(t, 1)
	r := c.publishInitial("s1")
	c.waitEpoch(r.Epoch, "s1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.kv("s1").Batch(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: []*kvpb.BatchOp{bget(nil, "k")}}))
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Zero(t, msg.Results[0].Code, msg.Results[0].Error)
	c.stopNode("s1")
	_, err = stream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// TestBatchWriteTimeoutAndCancel: a write the chain cannot commit (the
// head's link to the middle is cut) fails at its timeout_ms with
// DeadlineExceeded while the stream stays open; one without a timeout
// fails when the client cancels the stream, and nothing of either stays
// behind at the head. Retried with the same request ids once the link
// heals, both commit.
func TestBatchWriteTimeoutAndCancel(t *testing.T) {
	c := newCluster(t, 3)
	r := c.publishInitial("s1", "s2", "s3")
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	w := c.client()
	for _, res := range c.batchSettled(t, "s1", bput(w.header(), "timed", "0", 0), bput(w.header(), "open", "0", 0)) {
		require.Zero(t, res.Code, res.Error) // both partitions take writes
	}
	timed, open := bput(w.header(), "timed", "1", 0), bput(w.header(), "open", "2", 0)
	timed.TimeoutMs, timed.Id, open.Id = 300, 1, 2
	heal := c.cutLink("s1", "s2")
	defer heal()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sctx, scancel := context.WithCancel(ctx)
	stream, err := c.kv("s1").Batch(sctx)
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: []*kvpb.BatchOp{timed, open}}))
	msg, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, msg.Results, 1)
	res := msg.Results[0]
	require.Equal(t, uint64(1), res.Id)
	require.Equal(t, codes.DeadlineExceeded, codes.Code(res.Code), res.Error)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

	scancel()
	_, err = stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	core := c.srv("s1").core
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		core.mu.Lock()
		defer core.mu.Unlock()
		return len(core.waits) == 0
	})

	heal()
	for _, op := range []*kvpb.BatchOp{timed, open} {
		op.TimeoutMs = 0
	}
	for _, res := range c.batchSettled(t, "s1", timed, open) {
		require.Zero(t, res.Code, res.Error)
		require.Equal(t, kvpb.Status_UPDATE, res.Response.Status, "id %d", res.Id)
	}
	got := c.batchSettled(t, "s3", bget(nil, "timed"), bget(nil, "open"))
	require.Equal(t, "1", string(got[0].Response.GetValue()))
	require.Equal(t, "2", string(got[1].Response.GetValue()))
}
