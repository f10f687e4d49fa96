package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// batchTransport sends every operation on the Batch stream of its server
// (DESIGN §7): one stream per connection, every concurrent call multiplexed
// on it by id, whatever is queued sent as one message.
//
// Per stream, a writer goroutine drains the queue and a reader goroutine
// hands each result to its caller through a pooled channel; a call starts
// no goroutine of its own. A stream that breaks fails every call pending on
// it with codes.Unavailable (the retry logic's dead connection), and the
// next call opens a new stream.
//
// A server without the Batch stream (Unimplemented: an older server, or
// another implementation of the service) gets unary calls from then on.
type batchTransport struct {
	conns *connPool
	unary *unaryTransport

	mu      sync.Mutex // guards streams, noBatch and closed
	streams map[string]*batchStream
	noBatch map[string]bool // servers that answered Batch with Unimplemented
	closed  bool
}

func newBatchTransport(conns *connPool) *batchTransport {
	return &batchTransport{
		conns: conns, unary: &unaryTransport{conns: conns},
		streams: map[string]*batchStream{}, noBatch: map[string]bool{},
	}
}

func (t *batchTransport) call(ctx context.Context, addr string, o *op) (*kvpb.Response, error) {
	if o.kind == opScan {
		return t.unary.call(ctx, addr, o) // pages are large and few: not worth the stream
	}
	bs, err := t.stream(addr)
	if bs == nil {
		if err == nil {
			return t.unary.call(ctx, addr, o)
		}
		return nil, err
	}
	resp, err := bs.call(ctx, toBatchOp(ctx, o))
	if err != nil && bs.unimplemented() {
		// No operation ran: the server refused the stream itself.
		t.mu.Lock()
		t.noBatch[addr] = true
		t.mu.Unlock()
		return t.unary.call(ctx, addr, o)
	}
	return resp, err
}

// stream returns the stream to addr, starting a new one when there is none
// or it broke; nil and no error when addr takes only unary calls. The stream opens in its writer goroutine, so no caller waits
// for a connection under the lock.
func (t *batchTransport) stream(addr string) (*batchStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if t.noBatch[addr] {
		return nil, nil // unary calls
	}
	if bs, ok := t.streams[addr]; ok && !bs.isBroken() {
		return bs, nil
	}
	conn, err := t.conns.get(addr)
	if err != nil {
		return nil, err
	}
	bs := newBatchStream(kvpb.NewKVClient(conn))
	t.streams[addr] = bs
	return bs, nil
}

func (t *batchTransport) close() error {
	t.mu.Lock()
	t.closed = true
	streams := t.streams
	t.streams = map[string]*batchStream{}
	t.mu.Unlock()
	for _, bs := range streams {
		bs.fail(ErrClosed)
	}
	return t.conns.close()
}

// toBatchOp builds the wire form of o, carrying ctx's deadline as a unary
// call would. A call may return (its deadline passed) while the writer is
// still encoding its message, so the op owns what it sends: a copy of the
// header (the retry loop rewrites o's) and of the value (the caller may
// reuse its buffer once Put returns). Keys are the library's own copies.
func toBatchOp(ctx context.Context, o *op) *kvpb.BatchOp {
	var value []byte
	if o.kind == opPut {
		value = bytes.Clone(o.value)
	}
	h := o.header
	h = &kvpb.RequestHeader{
		Epoch: h.Epoch, ChainVersion: h.ChainVersion, ClientId: h.ClientId, Seq: h.Seq, Token: h.Token, Forward: h.Forward,
		Namespace: h.Namespace,
	}
	bo := o.request(h, value)
	if d, ok := ctx.Deadline(); ok {
		bo.TimeoutMs = max(time.Until(d).Milliseconds(), 1)
	}
	return bo
}

// batchResult is what a waiting call receives.
type batchResult struct {
	resp *kvpb.Response
	err  error
}

// waiters are the channels calls wait on; each has room for its one result,
// so the reader never blocks on a caller.
var waiters = sync.Pool{New: func() any { return make(chan batchResult, 1) }}

// batchStream is one Batch stream and the calls in flight on it.
type batchStream struct {
	ctx    context.Context // the stream's; cancelled when it breaks
	cancel context.CancelFunc

	mu      sync.Mutex // guards the fields below
	nextID  uint64
	queue   []*kvpb.BatchOp
	spare   []*kvpb.BatchOp // the queue's other buffer, reused by the writer
	pending map[uint64]chan batchResult
	err     error         // set once the stream broke
	unimpl  bool          // it broke because the server has no Batch stream
	wake    chan struct{} // capacity 1: the queue has work
	done    chan struct{} // closed when the stream broke
}

func newBatchStream(kv kvpb.KVClient) *batchStream {
	ctx, cancel := context.WithCancel(context.Background())
	bs := &batchStream{
		ctx: ctx, cancel: cancel, pending: map[uint64]chan batchResult{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go bs.run(kv)
	return bs
}

// run opens the stream, starts its reader and becomes its writer.
func (bs *batchStream) run(kv kvpb.KVClient) {
	stream, err := kv.Batch(bs.ctx)
	if err != nil {
		bs.fail(err)
		return
	}
	go bs.readLoop(stream)
	bs.writeLoop(stream)
}

func (bs *batchStream) unimplemented() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.unimpl
}

func (bs *batchStream) isBroken() bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.err != nil
}

// call queues op and waits for its result or ctx.
func (bs *batchStream) call(ctx context.Context, op *kvpb.BatchOp) (*kvpb.Response, error) {
	ch := waiters.Get().(chan batchResult)
	bs.mu.Lock()
	if bs.err != nil {
		err := bs.err
		bs.mu.Unlock()
		waiters.Put(ch)
		return nil, err
	}
	bs.nextID++
	op.Id = bs.nextID
	bs.pending[op.Id] = ch
	bs.queue = append(bs.queue, op)
	bs.mu.Unlock()
	select {
	case bs.wake <- struct{}{}:
	default:
	}
	select {
	case r := <-ch:
		waiters.Put(ch)
		return r.resp, r.err
	case <-ctx.Done():
		bs.mu.Lock()
		_, mine := bs.pending[op.Id]
		delete(bs.pending, op.Id)
		bs.mu.Unlock()
		if !mine {
			<-ch // the reader took it and is sending now: drain before reuse
		}
		waiters.Put(ch)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// writeLoop sends everything queued as one message.
func (bs *batchStream) writeLoop(stream kvpb.KV_BatchClient) {
	for {
		select {
		case <-bs.wake:
		case <-bs.done:
			return
		}
		// Let the callers that are runnable now (woken by the last
		// results) queue theirs first: fewer, fuller messages.
		runtime.Gosched()
		bs.mu.Lock()
		ops := bs.queue
		bs.queue, bs.spare = bs.spare[:0], nil
		bs.mu.Unlock()
		if len(ops) == 0 {
			continue
		}
		err := stream.Send(&kvpb.BatchRequest{Ops: ops})
		clear(ops)
		bs.mu.Lock()
		bs.spare = ops[:0] // Send has encoded the message: reuse its slice
		bs.mu.Unlock()
		if errors.Is(err, io.EOF) {
			return // the server ended the stream: the reader's Recv gets its status and fails it
		}
		if err != nil {
			bs.fail(err)
			return
		}
	}
}

// readLoop hands each result to its caller until the stream breaks.
func (bs *batchStream) readLoop(stream kvpb.KV_BatchClient) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			bs.fail(err)
			return
		}
		for _, r := range msg.Results {
			bs.mu.Lock()
			ch, ok := bs.pending[r.Id]
			delete(bs.pending, r.Id)
			bs.mu.Unlock()
			if ok {
				ch <- fromBatchResult(r)
			}
		}
	}
}

// fail breaks the stream once: every pending call gets a retryable error
// (see streamBroken).
func (bs *batchStream) fail(cause error) {
	err := streamBroken(cause)
	bs.mu.Lock()
	if bs.err != nil {
		bs.mu.Unlock()
		return
	}
	bs.err, bs.unimpl = err, status.Code(cause) == codes.Unimplemented
	pending := bs.pending
	bs.pending = map[uint64]chan batchResult{}
	bs.queue = nil
	close(bs.done)
	bs.mu.Unlock()
	bs.cancel()
	for _, ch := range pending {
		ch <- batchResult{err: err}
	}
}

// fromBatchResult rebuilds what the unary RPC would have returned.
func fromBatchResult(r *kvpb.BatchResult) batchResult {
	if r.Response != nil {
		return batchResult{resp: r.Response}
	}
	code := codes.Code(r.Code)
	if code == codes.OK {
		code = codes.Internal // a result with neither: the server is broken
	}
	return batchResult{err: status.Error(code, r.Error)}
}

// streamBroken is the error of every call a broken stream fails: the retry
// logic treats it as a dead connection (a write's outcome is unknown). The
// exception is the connection limit: the server refuses the stream before
// it reads any operation, so each call gets that refusal, as a unary call
// would.
func streamBroken(err error) error {
	if errors.Is(err, ErrClosed) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(kverr.FromStatus(err), ErrTooManyConnections) {
		return err
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("kvclient: batch stream broken: %v", err))
}
