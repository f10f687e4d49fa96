package kvclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
// last response; the channel closes after it). The first response of a
// watch has Created set and no events: from then on every committed write
// is delivered (a write that starts after it is).
type WatchResponse struct {
	Events  []Event
	Created bool
	Err     error
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
	var started sync.WaitGroup
	started.Add(len(parts))
	for _, p := range parts {
		after := uint64(0)
		if o.from > 0 {
			after = o.from - 1
		}
		var once sync.Once
		go func() { errc <- c.watchPart(ctx, p, key, o.prefix, after, out, func() { once.Do(started.Done) }) }()
	}
	created := make(chan struct{})
	go func() { started.Wait(); close(created) }()
	select {
	case <-created:
		select {
		case out <- WatchResponse{Created: true}:
		case <-ctx.Done():
		}
	case err := <-errc:
		errc <- err // counted below
	case <-ctx.Done():
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
// the partition's tail until ctx ends or the watch cannot go on. A member
// whose history does not reach back to after (a tail that joined by a
// snapshot) sends it to the other members, tail to head, before the watch
// gives up with ErrWatchCompacted.
func (c *Client) watchPart(ctx context.Context, p int, key string, prefix bool, after uint64, out chan<- WatchResponse, started func()) error {
	backoff, refused := minBackoff, ""
	short := map[string]uint64{} // members whose history starts after `after`, at that after
	for ctx.Err() == nil {
		rr := c.rings.get()
		o := &op{kind: opWatch, part: p, key: []byte(key), header: &kvpb.RequestHeader{ClientId: c.clientID}}
		err := c.authorize(ctx, rr, o, refused)
		var addr, id string
		if err == nil {
			addr, err = c.route(rr, o)
		}
		if err == nil {
			id, addr = c.watchMember(rr, p, after, short, addr)
			err = c.watchStream(ctx, addr, o, prefix, &after, out, started)
		}
		switch {
		case err == nil:
			backoff = minBackoff // the stream delivered: a fresh start
		case unauthenticated(err) && refused == "":
			refused = o.header.Token
			continue
		case errors.Is(kverr.FromStatus(err), ErrWatchCompacted) && id != "":
			short[id] = after
			if len(short) < len(rr.Chain(p).Members) {
				continue // another member may keep more
			}
			return kverr.FromStatus(err)
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

// watchMember picks the member to watch partition p at: the tail (addr,
// by route), else the member nearest the tail not known to lack the
// history after `after`.
func (c *Client) watchMember(rr *routedRing, p int, after uint64, short map[string]uint64, addr string) (string, string) {
	ms := rr.Chain(p).Members
	for i := len(ms) - 1; i >= 0; i-- {
		if a, ok := short[ms[i]]; ok && a == after {
			continue
		}
		if a, ok := rr.addr[ms[i]]; ok {
			return ms[i], a
		}
	}
	return "", addr
}

// errRedirect: the server ended the stream asking to resume at the tail.
var errRedirect = errors.New("kvclient: watch moved")

// watchStream runs one stream from addr, advancing *after past what it
// delivered. It returns nil when the stream delivered something and then
// broke, errRedirect when the server sent it elsewhere.
func (c *Client) watchStream(ctx context.Context, addr string, o *op, prefix bool, after *uint64, out chan<- WatchResponse, started func()) error {
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
		started() // the server has registered the watch
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
