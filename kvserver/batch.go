package kvserver

import (
	"context"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/status"
)

// Operation names: metric labels of the key operations.
const (
	opPut    = "put"
	opGet    = "get"
	opDelete = "delete"
	opIncr   = "incr"
	opExpire = "expire"
)

// serveBatch serves one Batch stream (DESIGN §7). The calling goroutine
// receives: a get is answered at once (it never waits); the puts and
// deletes of one request message that this server heads are proposed
// together, and each is answered when the chain acks it (batchWrites);
// other writes run in a goroutine of their own, as a unary call would.
// One sender goroutine sends whatever results are ready, in messages of
// at most batchChunkBytes.
//
// Two bounds keep a stream's memory in check; at either the receiver stops
// reading, so gRPC flow control holds the client back: at most
// MaxBatchInflight writes wait for the chain, and the answers the client
// has not read yet hold at most MaxBatchQueuedBytes (plus one answer). A
// stream that stays at the byte bound, its client reading nothing, for
// BatchStallTimeout is closed with ResourceExhausted.
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
	out := s.newBatchOut()
	sendErr, recvErr := make(chan error, 1), make(chan error, 1)
	if !s.goAttach(func() { sendErr <- out.run(stream) }) {
		return toStatus(ErrStopped)
	}
	s.goAttach(func() {
		writes := s.newBatchWrites(ctx, out)
		stop := context.AfterFunc(ctx, writes.end)
		err := s.receiveBatches(stream, writes)
		writes.wg.Wait() // every write answers (or ends with ctx) before the stream ends
		stop()
		recvErr <- err
		out.close()
	})
	select {
	case err := <-sendErr: // the sender ends after close, so recvErr is ready
		if rerr := <-recvErr; rerr != nil {
			err = rerr
		}
		return err
	case <-out.stalled:
		// The sender is blocked in a Send the client does not read:
		// returning ends the stream, which ends the Send and the receiver.
		out.abandon()
		s.metrics.batchClosed.Inc()
		return toStatus(out.stallErr())
	case <-s.stopc:
		out.abandon()
		<-sendErr // nothing is sent once the handler returns
		return toStatus(ErrStopped)
	}
}

// receiveBatches reads requests until the client closes its side (nil) or
// the stream fails; before each operation it waits for room under the
// stream's bounds. The writes of a request that this server heads are
// proposed together once it is read (batchWrites).
func (s *Server) receiveBatches(stream kvpb.KV_BatchServer, w *batchWrites) error {
	defer w.flush()
	for {
		if err := w.waitRoom(); err != nil {
			return err
		}
		req, err := stream.Recv()
		if err != nil {
			return endOfStream(err)
		}
		for _, op := range req.Ops {
			if err := w.waitRoom(); err != nil {
				return err
			}
			if g := op.GetGet(); g != nil {
				resp, err := s.serveGet(w.ctx, g)
				w.out.add(result(op.Id, resp, err))
				continue
			}
			if err := w.takeSlot(); err != nil {
				return err
			}
			w.start(op)
		}
		w.flush()
	}
}

// takeSlot takes one of a stream's MaxBatchInflight write slots, waiting
// (and counting the wait) when all are taken.
func (s *Server) takeSlot(ctx context.Context, slots chan struct{}) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	s.metrics.batchStalls.WithLabelValues(boundInflight).Inc()
	select {
	case slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxOpTimeout caps a Batch operation's timeout_ms.
const maxOpTimeout = time.Hour

// opTimeout is a Batch operation's deadline from its timeout_ms: none (0)
// for 0 or less, at most maxOpTimeout, so no client number overflows a
// Duration into one already past.
func opTimeout(ms int64) time.Duration {
	if ms <= 0 {
		return 0
	}
	return time.Duration(min(ms, maxOpTimeout.Milliseconds())) * time.Millisecond
}

// serveBatchWrite runs one put or delete under the operation's deadline.
func (s *Server) serveBatchWrite(ctx context.Context, op *kvpb.BatchOp) *kvpb.BatchResult {
	if d := opTimeout(op.TimeoutMs); d > 0 {
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
	case op.GetIncr() != nil:
		resp, err = s.serveIncr(ctx, op.GetIncr())
	case op.GetExpire() != nil:
		resp, err = s.serveExpire(ctx, op.GetExpire())
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
