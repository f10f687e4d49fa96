package kvclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// memServer is a fake one-server cluster with an in-memory map that serves
// both the unary RPCs and the Batch stream. With hold set, the next Batch
// stream receives requests without answering them until the test breaks it.
type memServer struct {
	kvpb.UnimplementedKVServer
	addr string

	mu      sync.Mutex // guards data
	data    map[string][]byte
	streams atomic.Int64 // Batch streams opened
	msgs    atomic.Int64 // BatchRequest messages received
	ops     atomic.Int64 // operations received on Batch streams
	unary   atomic.Int64 // unary key operations
	hold    atomic.Bool
	held    atomic.Int64  // operations received by the held stream
	breakc  chan struct{} // closed by the test to break the held stream
}

func startMemServer(t *testing.T) *memServer {
	t.Helper()
	lis := listen(t)
	s := &memServer{addr: lis.Addr().String(), data: map[string][]byte{}, breakc: make(chan struct{})}
	serveKV(t, lis, s)
	return s
}

func (s *memServer) GetRing(context.Context, *kvpb.GetRingRequest) (*kvpb.RingResponse, error) {
	return oneServerRing(s.addr, false)
}

func (s *memServer) Put(_ context.Context, r *kvpb.PutRequest) (*kvpb.Response, error) {
	s.unary.Add(1)
	return s.put(r), nil
}

func (s *memServer) Get(_ context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	s.unary.Add(1)
	return s.get(r), nil
}

func (s *memServer) put(r *kvpb.PutRequest) *kvpb.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.data[string(r.Key)]
	s.data[string(r.Key)] = r.Value
	if ok {
		return &kvpb.Response{Status: kvpb.Status_UPDATE, Epoch: 1}
	}
	return &kvpb.Response{Status: kvpb.Status_SUCCESS, Epoch: 1}
}

func (s *memServer) get(r *kvpb.GetRequest) *kvpb.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(r.Key) == "stopped" {
		return &kvpb.Response{Status: kvpb.Status_SERVER_STOPPED, Epoch: 1, Message: "test server stops"}
	}
	v, ok := s.data[string(r.Key)]
	if !ok {
		return &kvpb.Response{Status: kvpb.Status_NOT_FOUND, Epoch: 1}
	}
	return &kvpb.Response{Status: kvpb.Status_SUCCESS, Value: v, Epoch: 1}
}

func (s *memServer) Batch(stream kvpb.KV_BatchServer) error {
	s.streams.Add(1)
	if s.hold.Swap(false) {
		return s.holdStream(stream)
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		s.msgs.Add(1)
		s.ops.Add(int64(len(req.Ops)))
		out := &kvpb.BatchResponse{}
		for _, op := range req.Ops {
			res := &kvpb.BatchResult{Id: op.Id}
			switch {
			case op.GetPut() != nil:
				res.Response = s.put(op.GetPut())
			case op.GetGet() != nil:
				if string(op.GetGet().Key) == "bad" {
					res.Code, res.Error = uint32(codes.InvalidArgument), "bad key"
					break
				}
				res.Response = s.get(op.GetGet())
			}
			out.Results = append(out.Results, res)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// holdStream takes requests and never answers; it fails when breakc closes.
func (s *memServer) holdStream(stream kvpb.KV_BatchServer) error {
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				return
			}
			s.held.Add(int64(len(req.Ops)))
		}
	}()
	select {
	case <-s.breakc:
		return status.Error(codes.Unavailable, "test breaks the stream")
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

func newMemClient(t *testing.T, s *memServer, opts ...Option) *Client {
	t.Helper()
	cfg := config.DefaultClient()
	cfg.Servers = []string{s.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBatchCalls(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		opts  []Option
		batch bool
	}{
		{"batch", nil, true},
		{"unary", []Option{WithUnaryCalls()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startMemServer(t)
			c := newMemClient(t, s, tc.opts...)
			res, err := c.Put(ctx, "k", []byte("v1"))
			require.NoError(t, err)
			require.Equal(t, Created, res)
			res, err = c.Put(ctx, "k", []byte("v2"))
			require.NoError(t, err)
			require.Equal(t, Updated, res)
			v, err := c.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, "v2", string(v))
			_, err = c.Get(ctx, "missing")
			require.ErrorIs(t, err, ErrNotFound)
			_, err = c.Put(ctx, string(make([]byte, 65)), nil)
			require.ErrorIs(t, err, ErrKeyTooLarge)
			if tc.batch {
				_, err = c.Get(ctx, "bad")
				require.EqualError(t, err, "bad key", "a per-request error maps like a unary one: the server's message")
				require.ErrorIs(t, err, ErrInvalidArgument)
				require.Zero(t, s.unary.Load())
				require.EqualValues(t, 1, s.streams.Load(), "one stream per connection")
			} else {
				require.Zero(t, s.streams.Load())
			}
		})
	}
}

// TestBatchMultiplexes runs many callers at once: all on one stream, their
// requests coalesced into fewer messages, each answered correctly.
func TestBatchMultiplexes(t *testing.T) {
	s := startMemServer(t)
	c := newMemClient(t, s)
	const callers, each = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("k%d-%d", g, i)
				if _, err := c.Put(context.Background(), k, []byte(k)); err != nil {
					errs <- err
					return
				}
				v, err := c.Get(context.Background(), k)
				if err == nil && string(v) != k {
					err = fmt.Errorf("get %s = %q", k, v)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, s.streams.Load())
	require.EqualValues(t, 2*callers*each, s.ops.Load())
	t.Logf("%d operations in %d messages", s.ops.Load(), s.msgs.Load())
}

// TestBatchStreamBreaks: calls pending on a stream that breaks fail like a
// dead connection; the library retries them on a new stream (reads) or
// reports the unknown outcome (writes past their deadline), never success.
func TestBatchStreamBreaks(t *testing.T) {
	s := startMemServer(t)
	c := newMemClient(t, s)
	_, err := c.Put(context.Background(), "k", []byte("v"))
	require.NoError(t, err)
	// The next stream holds requests: break the current one first.
	s.hold.Store(true)
	c.tr.(*batchTransport).mu.Lock()
	for _, bs := range c.tr.(*batchTransport).streams {
		bs.fail(status.Error(codes.Unavailable, "test"))
	}
	c.tr.(*batchTransport).mu.Unlock()

	const readers = 8
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	for range readers {
		wg.Go(func() {
			v, err := c.Get(context.Background(), "k")
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Put(ctx, "w", []byte("x"))
	require.ErrorIs(t, err, ErrUnknownOutcome, "a write with no answer before its deadline")
	require.EqualValues(t, readers+1, s.held.Load(), "the held stream took every call")
	close(s.breakc)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "reads retried on a new stream")
	}
	require.GreaterOrEqual(t, s.streams.Load(), int64(3), "a new stream after each break")
}

// TestBatchStreamFailsPending checks the transport itself: a broken stream
// fails every pending call with a retryable error at once.
func TestBatchStreamFailsPending(t *testing.T) {
	s := startMemServer(t)
	s.hold.Store(true)
	c := newMemClient(t, s)
	bs, err := c.tr.(*batchTransport).stream(s.addr)
	require.NoError(t, err)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := bs.call(context.Background(), &kvpb.BatchOp{Op: &kvpb.BatchOp_Get{Get: &kvpb.GetRequest{Key: []byte("k")}}})
			errs <- err
		}()
	}
	testutil.Eventually(t, 5*time.Second, time.Millisecond, func() bool { return s.held.Load() == 4 }, "4 calls held")
	close(s.breakc)
	for range 4 {
		err := <-errs
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		require.True(t, retryable(err))
	}
	_, err = bs.call(context.Background(), &kvpb.BatchOp{})
	require.Error(t, err, "a broken stream takes no more calls")
	bs2, err := c.tr.(*batchTransport).stream(s.addr)
	require.NoError(t, err)
	require.NotSame(t, bs, bs2, "the next call opens a new stream")
}
