package kvclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"go.uber.org/zap"
)

// Backoff between attempts, doubling up to the cap.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// WriteRetryWindow bounds how long a write is retried once an attempt may
// have reached a server, whatever the caller's deadline: a server
// remembers a request id (its answer, for a retry) for 30 s, and a retry
// after it forgot could apply the write a second time. Half of that leaves
// the servers' clocks room to differ. After it the call fails with
// ErrUnknownOutcome.
const WriteRetryWindow = 15 * time.Second

// writeRetryWindow is WriteRetryWindow, shorter in tests.
var writeRetryWindow = WriteRetryWindow

// do routes o by the cached ring and retries on stale routing and dead
// connections until ctx ends. Writes keep one request id across attempts so
// the head can recognise a retry.
func (c *Client) do(ctx context.Context, o *op) (*kvpb.Response, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	o.header = &kvpb.RequestHeader{ClientId: c.clientID}
	if o.kind.write() {
		o.header.Seq = c.seq.Add(1)
	}
	ambiguous := false // a write attempt may have reached a server
	refused := ""      // a token a server refused: log in again, once
	backoff := minBackoff
	var lastErr error
	var sent time.Time // the write's first attempt that may have reached a server
	for attempt := 0; ; attempt++ {
		if ambiguous && time.Since(sent) >= writeRetryWindow {
			break // a retry now might find its request id forgotten
		}
		rr := c.rings.get()
		if err := checkLimits(rr.Ring, o); err != nil {
			return nil, err
		}
		// A login no server answered is retried like the call itself.
		err := c.authorize(ctx, rr, o, refused)
		if err != nil && !errors.Is(err, ErrUnavailable) {
			return nil, err // no or wrong credentials
		}
		var addr string
		if err == nil {
			addr, err = c.route(rr, o)
		}
		if err == nil {
			var resp *kvpb.Response
			start := time.Now()
			if sent.IsZero() && o.kind.write() {
				sent = start
			}
			resp, err = c.tr.call(ctx, addr, o)
			c.lat.observe(addr, time.Since(start), err)
			if err == nil && resp.Status == kvpb.Status_READ_FROM_TAIL && !o.toTail {
				o.toTail = true // the key is dirty at the nearest member
				continue
			}
			if err == nil && !redirect(resp.Status) {
				return resp, nil
			}
			if err == nil {
				err = fmt.Errorf("%s: %w", addr, refusal(resp))
			} else if unauthenticated(err) && refused == "" {
				refused = o.header.Token // expired or revoked: log in again and retry
				continue
			} else if !retryable(err) {
				return nil, kverr.FromStatus(err)
			} else {
				err = kverr.FromStatus(err)
				ambiguous = ambiguous || o.kind.write()
			}
		}
		lastErr = err
		c.lg.Debug("retrying", zap.Int("attempt", attempt), zap.Error(err))
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(2*backoff, maxBackoff)
		// A failed refresh is not fatal: the next attempt may find the ring.
		_, _ = c.rings.refresh(ctx, rr.Epoch)
	}
	if ambiguous {
		// Not %w: the last refusal says nothing of the write's outcome.
		return nil, fmt.Errorf("%w: %v", ErrUnknownOutcome, lastErr)
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(lastErr, ctx.Err()))
}

// refusal is the error of a Response that asks to go elsewhere or later
// (redirect): the table's error for its status.
func refusal(resp *kvpb.Response) error {
	if err := kverr.FromResponse(resp.Status, resp.Message); err != nil {
		return err
	}
	return fmt.Errorf("%s: %s", resp.Status, resp.Message)
}

// route picks the server for o: the head for writes, the tail for reads,
// the nearest member (nearestMember) for nearest reads.
func (c *Client) route(rr *routedRing, o *op) (string, error) {
	p := rr.PartitionOf(o.ns, o.key)
	if o.kind == opScan || o.kind == opWatch {
		if o.part >= len(rr.Chains) {
			return "", fmt.Errorf("%w: it names partition %d, the cluster has %d", ErrBadCursor, o.part, len(rr.Chains))
		}
		p = o.part
	}
	ch := rr.Chain(p)
	id := ch.Tail()
	switch {
	case o.kind.write():
		id = ch.Head()
	case o.nearest && !o.toTail:
		id = c.nearestMember(rr, ch.Members)
	}
	if id == "" {
		return "", ErrNoLayout
	}
	o.header.Epoch, o.header.ChainVersion = rr.Epoch, ch.Version
	addr, ok := rr.addr[id]
	if !ok {
		return "", fmt.Errorf("kvclient: ring names unknown server %q", id)
	}
	return addr, nil
}

// authorize sets o's token and namespace on a cluster with authentication,
// or the namespace of WithNamespace on any cluster.
func (c *Client) authorize(ctx context.Context, rr *routedRing, o *op, refused string) error {
	if c.ns != "" {
		o.header.Token, o.header.Namespace, o.ns = "", c.ns, []byte(c.ns)
		return nil
	}
	if !rr.Auth {
		o.header.Token, o.ns = "", nil
		return nil
	}
	tok, ns, err := c.token(ctx, refused)
	if err != nil {
		return err
	}
	o.header.Token, o.ns = tok, []byte(ns)
	return nil
}

// redirect reports statuses that mean "ask again elsewhere or later".
func redirect(s kvpb.Status) bool {
	switch s {
	case kvpb.Status_SERVER_NOT_RESPONSIBLE, kvpb.Status_SERVER_STOPPED, kvpb.Status_SERVER_WRITE_LOCK,
		kvpb.Status_SERVER_NOT_READY, kvpb.Status_READ_FROM_TAIL:
		return true
	}
	return false
}

func checkLimits(r *ringmeta.Ring, o *op) error {
	switch {
	case o.kind == opScan && len(o.key) > r.Limits.MaxKeyBytes:
		return fmt.Errorf("%w: prefix of %d bytes, limit %d", ErrKeyTooLarge, len(o.key), r.Limits.MaxKeyBytes)
	case o.kind == opScan:
		return nil // any prefix, the empty one too
	case len(o.key) == 0:
		return kverr.New(ErrEmptyKey)
	case len(o.key) > r.Limits.MaxKeyBytes:
		return kverr.Errorf(ErrKeyTooLarge, "%d bytes, limit is %d", len(o.key), r.Limits.MaxKeyBytes)
	case len(o.value) > r.Limits.MaxValueBytes:
		return kverr.Errorf(ErrValueTooLarge, "%d bytes, limit is %d", len(o.value), r.Limits.MaxValueBytes)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
