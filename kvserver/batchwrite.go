package kvserver

import (
	"context"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// batchWrites runs the writes of one Batch stream. A put or delete whose
// head is this server is proposed by the stream's receiver itself, with
// the other writes of the same request message in one step of the node,
// and its answer is added to the stream's results by the goroutine that
// drains it (waiter.done): no goroutine and no channel per write. Under
// writes those were, per write, a goroutine started and a wakeup through
// the waiter's channel, and a step of the node each. A write forwarded to
// another head, and every other kind, runs in a goroutine of its own
// (serveBatchWrite), as before.
//
// At most MaxBatchInflight writes wait at a time (slots). A write whose
// timeout_ms passes, or every write when the stream ends, is failed as
// the unary call would fail it; the chain may still commit it, which a
// retry with the same request id finds.
type batchWrites struct {
	s     *Server
	ctx   context.Context // the stream's
	out   *batchOut
	slots chan struct{}
	wg    sync.WaitGroup // one per write until its result is added
	// pending are the proposals of the request being read, for flush.
	pending []input
}

func (s *Server) newBatchWrites(ctx context.Context, out *batchOut) *batchWrites {
	return &batchWrites{s: s, ctx: ctx, out: out, slots: make(chan struct{}, s.cfg.MaxBatchInflight)}
}

// takeSlot takes a write slot, proposing what is pending first when it
// must wait: the slots it waits for may be those of pending writes.
func (b *batchWrites) takeSlot() error {
	select {
	case b.slots <- struct{}{}:
		return nil
	default:
	}
	b.flush()
	return b.s.takeSlot(b.ctx, b.slots)
}

// waitRoom is batchOut.waitRoom, proposing what is pending first when it
// must wait.
func (b *batchWrites) waitRoom() error {
	if b.out.queuedBytes() >= b.out.limit {
		b.flush()
	}
	return b.out.waitRoom(b.ctx)
}

// start runs write op, which holds a slot.
func (b *batchWrites) start(op *kvpb.BatchOp) {
	b.wg.Add(1)
	switch {
	case op.GetPut() != nil:
		r := op.GetPut()
		startHeadWrite(b, op, opPut, r, r.Header, r.Key, kvpb.KVClient.Put, putOp(r))
	case op.GetDelete() != nil:
		r := op.GetDelete()
		startHeadWrite(b, op, opDelete, r, r.Header, r.Key, kvpb.KVClient.Delete, delOp(r))
	default:
		go func() {
			defer b.release()
			b.out.add(b.s.serveBatchWrite(b.ctx, op))
		}()
	}
}

// startHeadWrite is start for a put or delete (r, named name): proposed at
// the next flush when this server is the key's head.
func startHeadWrite[R proto.Message](b *batchWrites, op *kvpb.BatchOp, name string, r R, h *kvpb.RequestHeader, key []byte,
	send func(kvpb.KVClient, context.Context, R, ...grpc.CallOption) (*kvpb.Response, error), build opBuild) {
	start := time.Now()
	ns, rt, fwd, err := headRoute(b.s, b.ctx, r, h, key, send)
	if fwd != nil {
		go func() {
			ctx, cancel := opContext(b.ctx, op.TimeoutMs)
			defer cancel()
			resp, err := fwd(ctx)
			b.finish(op.Id, name, start, resp, err)
		}()
		return
	}
	if err != nil {
		b.finish(op.Id, name, start, nil, err)
		return
	}
	sop, err := build(ns, rt.ring.Limits)
	if err != nil {
		b.finish(op.Id, name, start, nil, err)
		return
	}
	w := &waiter{owner: b}
	var timer *time.Timer
	if d := opTimeout(op.TimeoutMs); d > 0 {
		timer = time.AfterFunc(d, func() { b.s.core.cancel(w, context.DeadlineExceeded) })
	}
	c := b.s.core
	w.done = func(a chainsm.Answer) {
		if timer != nil {
			timer.Stop()
		}
		err := mapAnswerErr(a.Err)
		if err == nil {
			c.s.metrics.commit.Observe(time.Since(start).Seconds())
		}
		resp, err := writeAnswer(rt, h, sop, a, err)
		b.finish(op.Id, name, start, resp, err)
	}
	b.pending = append(b.pending, input{qp: queuedProposal{p: rt.partition, pr: proposal(rt, h, sop), w: w, at: start}})
}

// finish adds a write's result, counted as the unary RPC counts it, and
// frees its slot.
func (b *batchWrites) finish(id uint64, name string, start time.Time, resp *kvpb.Response, err error) {
	resp, err = b.s.metrics.result(name, b.s.servedBy(resp), toStatus(err))
	b.s.metrics.observe(name, start)
	b.out.add(result(id, resp, err))
	b.release()
}

func (b *batchWrites) release() {
	<-b.slots
	b.wg.Done()
}

// flush proposes the pending writes, in one step of the node.
func (b *batchWrites) flush() {
	if len(b.pending) == 0 {
		return
	}
	b.s.core.runAll(b.pending)
	clear(b.pending)
	b.pending = b.pending[:0]
	if b.ctx.Err() != nil {
		b.end() // the stream ended before they were proposed: end missed them
	}
}

// end fails the writes still waiting once the stream's context ends.
func (b *batchWrites) end() {
	b.s.core.cancelOwner(b, b.ctx.Err())
}

// opContext is ctx under a Batch operation's timeout_ms.
func opContext(ctx context.Context, timeoutMs int64) (context.Context, context.CancelFunc) {
	if d := opTimeout(timeoutMs); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

// runAll queues ins and runs the queue unless another caller already did.
func (c *core) runAll(ins []input) {
	c.qmu.Lock()
	c.q = append(c.q, ins...)
	c.qmu.Unlock()
	c.runQueue()
}

// cancel fails w, a done waiter, with err unless it was answered already.
func (c *core) cancel(w *waiter, err error) {
	c.mu.Lock()
	mine := w.tok != 0 && c.waits[w.tok] == w
	if mine {
		delete(c.waits, w.tok)
	}
	c.mu.Unlock()
	if mine {
		w.done(chainsm.Answer{Token: w.tok, Err: notCommitted(err)})
	}
}

// cancelOwner fails, with err, every done waiter of stream b not answered
// yet.
func (c *core) cancelOwner(b *batchWrites, err error) {
	var ws []*waiter
	c.mu.Lock()
	for tok, w := range c.waits {
		if w.owner == b {
			delete(c.waits, tok)
			ws = append(ws, w)
		}
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.done(chainsm.Answer{Token: w.tok, Err: notCommitted(err)})
	}
}
