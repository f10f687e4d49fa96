package kvserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/prometheus/client_golang/prometheus"
)

// resultOverhead is what a queued result costs beyond its encoded size:
// the Go structs of the result and its response, and its slot in the
// queue. Charging it keeps many small answers (NOT_FOUND) within the bound.
const resultOverhead = 256

// batchChunkBytes bounds one BatchResponse the sender builds (a larger
// single result goes alone): far below max-message-bytes, and it keeps
// what a stalled stream holds in gRPC's buffers small.
const batchChunkBytes = 1 << 20

// batchOut collects the results of one stream for its sender goroutine and
// counts the bytes they hold, from add until their message is handed to
// gRPC, so the receiver can stop reading while the client does not read.
// While they are at the bound a stall timer runs: it restarts whenever the
// client reads (a message is handed to gRPC), and when it fires the stream
// is closed (stalled).
type batchOut struct {
	limit      int           // max-batch-queued-bytes
	stallAfter time.Duration // batch-stall-timeout
	onStall    func()        // counts the stream reaching its bound
	gauge      prometheus.Gauge

	mu      sync.Mutex // guards ready, charges, queued, closed, dropped and stall
	ready   []*kvpb.BatchResult
	charges []int // bytes each ready result is charged
	queued  int   // bytes of ready results and of those being sent
	closed  bool
	dropped bool        // abandon: the sender returns without sending more
	stall   *time.Timer // runs while queued >= limit

	wake      chan struct{} // capacity 1: results are ready or the stream closes
	room      chan struct{} // capacity 1: the sender handed a message to gRPC
	stalled   chan struct{} // closed when the stall timer fires
	stallOnce sync.Once
}

func (s *Server) newBatchOut() *batchOut {
	return &batchOut{
		limit: s.cfg.MaxBatchQueuedBytes, stallAfter: s.cfg.BatchStallTimeout,
		onStall: s.metrics.batchStalls.WithLabelValues(boundQueuedBytes).Inc, gauge: s.metrics.batchQueued,
		wake: make(chan struct{}, 1), room: make(chan struct{}, 1), stalled: make(chan struct{}),
	}
}

// add queues r for the sender; after abandon it is dropped.
func (b *batchOut) add(r *kvpb.BatchResult) {
	n := r.SizeVT() + resultOverhead
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		return
	}
	b.ready, b.charges = append(b.ready, r), append(b.charges, n)
	b.queued += n
	reached := b.queued >= b.limit && b.stall == nil
	if reached {
		b.stall = time.AfterFunc(b.stallAfter, func() { b.stallOnce.Do(func() { close(b.stalled) }) })
	}
	b.mu.Unlock()
	if reached {
		b.onStall()
	}
	b.gauge.Add(float64(n))
	signal(b.wake)
}

func (b *batchOut) close() { b.end(false) }

// abandon stops the sender; later results are dropped. The handler returns
// right after it, which ends a Send the client blocks.
func (b *batchOut) abandon() { b.end(true) }

// end marks the stream's last result added. After close the sender still
// sends what is queued (under the stall timer); after abandon it drops it.
func (b *batchOut) end(drop bool) {
	b.mu.Lock()
	b.closed = true
	if drop {
		b.dropped = true
		if b.stall != nil {
			b.stall.Stop()
		}
	}
	b.mu.Unlock()
	signal(b.wake)
}

// release uncharges n bytes the sender has handed to gRPC (or dropped): the
// client reads, so the stall timer restarts, or stops below the bound.
func (b *batchOut) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.queued -= n
	if b.stall != nil && !b.dropped {
		if b.queued < b.limit {
			b.stall.Stop()
			b.stall = nil
		} else {
			b.stall.Reset(b.stallAfter)
		}
	}
	b.mu.Unlock()
	b.gauge.Sub(float64(n))
	signal(b.room)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitRoom returns once the stream holds fewer than limit bytes of
// answers. Until then the receiver reads nothing, so gRPC's flow control
// holds the client back.
func (b *batchOut) waitRoom(ctx context.Context) error {
	for b.queuedBytes() >= b.limit {
		select {
		case <-b.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// stallErr is the error a stalled stream is closed with: it names the bound.
func (b *batchOut) stallErr() error {
	return fmt.Errorf("%w: %d bytes of answers queued, at max-batch-queued-bytes (ECSKV_MAX_BATCH_QUEUED_BYTES) %d, and none read for batch-stall-timeout (ECSKV_BATCH_STALL_TIMEOUT) %v",
		ErrBatchStalled, b.queuedBytes(), b.limit, b.stallAfter)
}

func (b *batchOut) queuedBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.queued
}

// run sends the ready results, at most batchChunkBytes of them per message,
// until close; after a send error or abandon it drops (and uncharges) the
// rest, so no writer blocks and the gauge returns to zero.
func (b *batchOut) run(stream kvpb.KV_BatchServer) error {
	var sendErr error
	for range b.wake {
		b.mu.Lock()
		ready, charges, closed := b.ready, b.charges, b.closed
		b.ready, b.charges = nil, nil
		b.mu.Unlock()
		for rest, cs := ready, charges; len(rest) > 0; {
			n, bytes := chunk(cs)
			if sendErr == nil && !b.isDropped() {
				sendErr = stream.Send(&kvpb.BatchResponse{Results: rest[:n]})
			}
			rest, cs = rest[n:], cs[n:]
			b.release(bytes)
		}
		clear(ready)
		b.mu.Lock()
		if b.ready == nil { // the messages are encoded: reuse the slices
			b.ready, b.charges = ready[:0], charges[:0]
		}
		b.mu.Unlock()
		if closed {
			return sendErr
		}
	}
	return sendErr
}

// isDropped reports abandon: the handler has returned (or is about to), so
// no Send may start.
func (b *batchOut) isDropped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// chunk returns how many of the leading charges fit in one message (at
// least one) and their bytes.
func chunk(charges []int) (n, bytes int) {
	for n < len(charges) && (n == 0 || bytes+charges[n] <= batchChunkBytes) {
		bytes += charges[n]
		n++
	}
	return n, bytes
}
