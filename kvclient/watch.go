package kvclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"go.uber.org/zap"
)

// EventKind is the kind of a watched write.
type EventKind int

const (
	// EventPut: the key was written.
	EventPut EventKind = iota
	// EventDelete: the key was deleted.
	EventDelete
	// EventExpire: the key expired (deleted by the TTL sweep, at or after
	// its expiry).
	EventExpire
)

func (k EventKind) String() string { return [...]string{"put", "delete", "expire"}[k] }

// Event is one committed write of a watched key.
type Event struct {
	Kind  EventKind
	Key   string
	Value []byte // EventPut
	// Version is the write's version (after a put, the key's version):
	// versions of one key grow, and those of keys of one partition are
	// one sequence.
	Version uint64
	Expiry  time.Time // EventPut with a TTL; zero: none
}

// WatchResponse carries events, or the error that ended the watch (the
// last response; the channel closes after it).
type WatchResponse struct {
	Events []Event
	Err    error
}

// WatchOption configures a watch.
type WatchOption func(*watchOptions)

type watchOptions struct {
	prefix bool
	from   uint64
}

// WatchPrefix watches every key starting with the given key (the empty
// string: every key of the caller's namespace).
func WatchPrefix() WatchOption { return func(o *watchOptions) { o.prefix = true } }

// WatchFromVersion starts a key watch at the key's writes of version v
// and later (0: from now), so a reader can watch from the version it
// read and miss nothing. Versions are per partition: a prefix watch
// starts from now.
func WatchFromVersion(v uint64) WatchOption { return func(o *watchOptions) { o.from = v } }

// Watch streams every committed write (put, delete, expiry) of key, or of
// the keys under a prefix with WatchPrefix, in order per key, until ctx
// ends. A watch follows its partitions across failovers and moves without
// gaps or repeats: each partition's stream resumes at the partition's new
// tail after the last write it delivered. A watch that falls behind
// further than the servers keep (ErrWatchLagged), or starts from a version
// no longer kept (ErrWatchCompacted), ends with that error and must
// re-read and start again; it never skips writes silently. The channel
// is closed when the watch ends; a caller that stops reading makes the
// watch fall behind.
func (c *Client) Watch(ctx context.Context, key string, opts ...WatchOption) <-chan WatchResponse {
	var o watchOptions
	for _, f := range opts {
		f(&o)
	}
	out := make(chan WatchResponse, 1)
	go func() {
		defer close(out)
		if err := c.watch(ctx, key, o, out); err != nil && ctx.Err() == nil {
			out <- WatchResponse{Err: err}
		}
	}()
	return out
}

func (c *Client) watch(ctx context.Context, key string, o watchOptions, out chan<- WatchResponse) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if o.prefix && o.from != 0 {
		return kverr.Errorf(ErrInvalidArgument, "a prefix watch starts from now: versions are per partition")
	}
	if !o.prefix && key == "" {
		return kverr.New(ErrEmptyKey)
	}
	rr := c.rings.get()
	probe := &op{kind: opWatch, key: []byte(key), header: &kvpb.RequestHeader{}}
	if err := c.authorize(ctx, rr, probe, ""); err != nil {
		return err
	}
	if len(rr.Chains) == 0 {
		return ErrNoLayout
	}
	parts := []int{rr.PartitionOf(probe.ns, []byte(key))}
	if o.prefix {
		parts = parts[:0]
		for p := range rr.Chains {
			parts = append(parts, p)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(parts))
	for _, p := range parts {
		after := uint64(0)
		if o.from > 0 {
			after = o.from - 1
		}
		go func() { errc <- c.watchPart(ctx, p, key, o.prefix, after, out) }()
	}
	var first error
	for range parts {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one partition's end ends the watch
		}
	}
	return first
}

// watchPart follows partition p's writes after seq after, reconnecting to
// the partition's tail until ctx ends or the watch cannot go on.
func (c *Client) watchPart(ctx context.Context, p int, key string, prefix bool, after uint64, out chan<- WatchResponse) error {
	backoff, refused := minBackoff, ""
	for ctx.Err() == nil {
		rr := c.rings.get()
		o := &op{kind: opWatch, part: p, key: []byte(key), header: &kvpb.RequestHeader{ClientId: c.clientID}}
		err := c.authorize(ctx, rr, o, refused)
		var addr string
		if err == nil {
			addr, err = c.route(rr, o)
		}
		if err == nil {
			err = c.watchStream(ctx, addr, o, prefix, &after, out)
		}
		switch {
		case err == nil:
			backoff = minBackoff // the stream delivered: a fresh start
		case unauthenticated(err) && refused == "":
			refused = o.header.Token
			continue
		case !retryable(err) && !errors.Is(err, errRedirect):
			return kverr.FromStatus(err)
		}
		c.lg.Debug("watch: resuming", zap.Int("partition", p), zap.Uint64("after", after), zap.Error(err))
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
		_, _ = c.rings.refresh(ctx, rr.Epoch)
	}
	return nil
}

// errRedirect: the server ended the stream asking to resume at the tail.
var errRedirect = errors.New("kvclient: watch moved")

// watchStream runs one stream from addr, advancing *after past what it
// delivered. It returns nil when the stream delivered something and then
// broke, errRedirect when the server sent it elsewhere.
func (c *Client) watchStream(ctx context.Context, addr string, o *op, prefix bool, after *uint64, out chan<- WatchResponse) error {
	conn, err := c.conns.get(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rq := &kvpb.WatchRequest{Header: o.header, Partition: uint32(o.part), AfterSeq: *after}
	if prefix {
		rq.Prefix = o.key
	} else {
		rq.Key = o.key
	}
	stream, err := kvpb.NewKVClient(conn).Watch(ctx, rq)
	if err != nil {
		return err
	}
	got := false
	for {
		resp, err := stream.Recv()
		switch {
		case err != nil && got && retryable(err):
			return nil
		case err != nil:
			return err
		case resp.Status != kvpb.Status_STATUS_UNSPECIFIED:
			return fmt.Errorf("%w: %s: %v", errRedirect, addr, refusal(&kvpb.Response{Status: resp.Status, Message: resp.Message}))
		}
		got = true
		if len(resp.Events) > 0 {
			select {
			case out <- WatchResponse{Events: toEvents(resp.Events)}:
			case <-ctx.Done():
				return nil
			}
		}
		*after = max(*after, resp.Seq)
	}
}

func toEvents(es []*kvpb.WatchEvent) []Event {
	out := make([]Event, len(es))
	for i, e := range es {
		out[i] = Event{Kind: EventKind(e.Kind), Key: string(e.Key), Value: e.Value, Version: e.Version}
		if e.ExpiryUnixMs != 0 {
			out[i].Expiry = time.UnixMilli(e.ExpiryUnixMs)
		}
	}
	return out
}
