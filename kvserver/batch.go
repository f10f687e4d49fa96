package kvserver

import (
	"context"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/status"
)

// Operation names: metric labels of the key operations.
const (
	opPut    = "put"
	opGet    = "get"
	opDelete = "delete"
)

// serveBatch serves one Batch stream (DESIGN §7). The calling goroutine
// receives: a get is answered at once (it never waits), a put or delete
// runs in a goroutine of its own because it waits for the chain's ack, as
// a unary call would. At most MaxStreams writes of a stream are in flight,
// the bound a connection has on unary calls; past it the receiver waits,
// and gRPC flow control holds the client back. One sender goroutine sends
// whatever results are ready in one message.
//
// Every operation goes through servePut, serveGet or serveDelete, so auth,
// namespaces, limits, rate limits and metrics are those of the unary RPCs.
//
// A client keeps its stream open for good, so, as Replicate does, the
// handler returns when Stop begins (the client retries elsewhere) instead
// of holding the graceful stop for its whole timeout; the receiver is
// tracked and ends with the stream.
func (s *Server) serveBatch(stream kvpb.KV_BatchServer) error {
	ctx := stream.Context()
	out := newBatchOut()
	sendErr := make(chan error, 1)
	if !s.goAttach(func() { sendErr <- out.run(stream) }) {
		return toStatus(ErrStopped)
	}

	slots := make(chan struct{}, max(s.cfg.MaxStreams, 1))
	recvErr := make(chan error, 1)
	s.goAttach(func() {
		var writes sync.WaitGroup
		err := s.receiveBatches(ctx, stream, out, slots, &writes)
		writes.Wait() // every write answers (or ends with ctx) before the stream ends
		out.close()
		recvErr <- err
	})
	select {
	case err := <-recvErr:
		if serr := <-sendErr; err == nil {
			err = serr
		}
		return err
	case <-s.stopc:
		out.abandon()
		<-sendErr // nothing is sent once the handler returns
		return toStatus(ErrStopped)
	}
}

// receiveBatches reads requests until the client closes its side (nil) or
// the stream fails.
func (s *Server) receiveBatches(ctx context.Context, stream kvpb.KV_BatchServer, out *batchOut,
	slots chan struct{}, writes *sync.WaitGroup) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return endOfStream(err)
		}
		for _, op := range req.Ops {
			if g := op.GetGet(); g != nil {
				resp, err := s.serveGet(ctx, g)
				out.add(result(op.Id, resp, err))
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			writes.Add(1)
			go func() {
				defer func() { <-slots; writes.Done() }()
				out.add(s.serveBatchWrite(ctx, op))
			}()
		}
	}
}

// maxOpTimeout caps a Batch operation's timeout_ms.
const maxOpTimeout = time.Hour

// serveBatchWrite runs one put or delete under the operation's deadline.
func (s *Server) serveBatchWrite(ctx context.Context, op *kvpb.BatchOp) *kvpb.BatchResult {
	if op.TimeoutMs > 0 {
		// A timeout beyond an hour is no timeout at all here (and its
		// Duration would overflow into one already past).
		d := time.Duration(min(op.TimeoutMs, maxOpTimeout.Milliseconds())) * time.Millisecond
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var (
		resp *kvpb.Response
		err  error
	)
	switch {
	case op.GetPut() != nil:
		resp, err = s.servePut(ctx, op.GetPut())
	case op.GetDelete() != nil:
		resp, err = s.serveDelete(ctx, op.GetDelete())
	default:
		err = toStatus(ErrUnknownOp)
	}
	return result(op.Id, resp, err)
}

// result is the batch form of a unary answer: the response, or the code
// and message of the gRPC status the unary RPC would have returned.
func result(id uint64, resp *kvpb.Response, err error) *kvpb.BatchResult {
	if err != nil {
		st := status.Convert(err)
		return &kvpb.BatchResult{Id: id, Code: uint32(st.Code()), Error: st.Message()}
	}
	return &kvpb.BatchResult{Id: id, Response: resp}
}

// batchOut collects the results of one stream for its sender goroutine.
type batchOut struct {
	mu      sync.Mutex // guards ready, closed and dropped
	ready   []*kvpb.BatchResult
	closed  bool
	dropped bool          // abandon: the sender returns without sending more
	wake    chan struct{} // capacity 1: results are ready or the stream closes
	scratch []*kvpb.BatchResult
}

func newBatchOut() *batchOut { return &batchOut{wake: make(chan struct{}, 1)} }

func (b *batchOut) add(r *kvpb.BatchResult) {
	b.mu.Lock()
	b.ready = append(b.ready, r)
	b.mu.Unlock()
	b.signal()
}

func (b *batchOut) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}

// abandon stops the sender at once; later results are dropped.
func (b *batchOut) abandon() {
	b.mu.Lock()
	b.closed, b.dropped = true, true
	b.mu.Unlock()
	b.signal()
}

func (b *batchOut) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run sends every ready result in one message until close; after a send
// error it keeps draining (and dropping) so no writer blocks.
func (b *batchOut) run(stream kvpb.KV_BatchServer) error {
	var sendErr error
	for range b.wake {
		b.mu.Lock()
		ready, closed := b.ready, b.closed
		b.ready, b.scratch = b.scratch[:0], nil
		if b.dropped {
			b.mu.Unlock()
			return sendErr
		}
		b.mu.Unlock()
		if len(ready) > 0 && sendErr == nil {
			sendErr = stream.Send(&kvpb.BatchResponse{Results: ready})
		}
		clear(ready)
		b.mu.Lock()
		b.scratch = ready[:0] // the message is encoded: reuse its slice
		b.mu.Unlock()
		if closed {
			return sendErr
		}
	}
	return sendErr
}
