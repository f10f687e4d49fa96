package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
)

// Outcomes of conditional writes and increments, matched with errors.Is.
var (
	// ErrConditionFailed: a conditional Put or Delete found the key not as
	// required and wrote nothing; WithMeta reports the key's current
	// version.
	ErrConditionFailed = errors.New("kvclient: condition failed")
	// ErrNotInteger: Incr found a value that is not a base-10 64-bit
	// integer, and wrote nothing.
	ErrNotInteger = errors.New("kvclient: value is not an integer")
	// ErrOverflow: Incr would overflow a 64-bit integer, and wrote nothing.
	ErrOverflow = errors.New("kvclient: increment would overflow")
)

// Meta is what a call reports about its key beside the value (WithMeta).
type Meta struct {
	// Version is the key's version: after a Put, Incr or Expire the one it
	// wrote, after a Get the one read; with ErrConditionFailed the key's
	// current one (0: absent). A key's version grows with every write to
	// it while it exists (it is the seq of the write in its partition).
	Version uint64
	// TTL is a Get's time left before the key expires (0: never).
	TTL time.Duration
	// Existed tells whether a write found a live value.
	Existed bool
	// Previous is the value a Put replaced, with ReturnPrevious (nil when
	// none existed); also set when its condition failed.
	Previous []byte
}

// IfAbsent makes a Put or Delete conditional on the key having no live
// value (Redis' SET NX); otherwise it fails with ErrConditionFailed.
func IfAbsent() OpOption { return condOption(kvpb.Condition_ABSENT, nil, 0) }

// IfExists makes a Put or Delete conditional on the key having a live
// value (SET XX).
func IfExists() OpOption { return condOption(kvpb.Condition_EXISTS, nil, 0) }

// IfValue makes a Put or Delete conditional on the key's live value being
// v (compare-and-swap).
func IfValue(v []byte) OpOption { return condOption(kvpb.Condition_VALUE, bytes.Clone(v), 0) }

// IfVersion makes a Put or Delete conditional on the key's version being
// ver (0: the key is absent), as read with WithMeta.
func IfVersion(ver uint64) OpOption { return condOption(kvpb.Condition_VERSION, nil, ver) }

func condOption(k kvpb.Condition_Kind, v []byte, ver uint64) OpOption {
	return func(o *opOptions) { o.cond = &kvpb.Condition{Kind: k, Value: v, Version: ver} }
}

// ReturnPrevious makes a Put report the value it replaced in
// Meta.Previous (SET ... GET).
func ReturnPrevious() OpOption { return func(o *opOptions) { o.prev = true } }

// WithMeta fills *m with what the call learnt of the key (Meta).
func WithMeta(m *Meta) OpOption { return func(o *opOptions) { o.meta = m } }

// fill sets o's Meta from resp.
func (o *opOptions) fill(resp *kvpb.Response) {
	if o.meta == nil {
		return
	}
	*o.meta = Meta{Version: resp.Version, TTL: time.Duration(resp.TtlMs) * time.Millisecond, Existed: resp.Existed}
	if o.prev && resp.Existed {
		o.meta.Previous = resp.Value
	}
}

// writeOutcome is the error a write's status means, if any.
func writeOutcome(st kvpb.Status) error {
	switch st {
	case kvpb.Status_CONDITION_FAILED:
		return ErrConditionFailed
	case kvpb.Status_NOT_AN_INTEGER:
		return ErrNotInteger
	case kvpb.Status_OVERFLOW:
		return ErrOverflow
	}
	return nil
}

// Incr adds delta to the integer stored at key (base 10; an absent key
// counts as 0) and returns the new value. The key keeps its expiry. A
// value that is not an integer is ErrNotInteger; an overflow ErrOverflow.
// Exactly once, like every write: a retry is recognised by its request id.
func (c *Client) Incr(ctx context.Context, key string, delta int64, opts ...OpOption) (int64, error) {
	o := c.opts(opts)
	resp, err := c.do(ctx, &op{kind: opIncr, key: []byte(key), delta: delta})
	if err != nil {
		return 0, err
	}
	o.served(resp)
	o.fill(resp)
	if err := writeOutcome(resp.Status); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(resp.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kvclient: incr answered %q: %w", resp.Value, err)
	}
	return n, nil
}

// Expire makes key expire ttl from now, keeping its value; ErrNotFound
// when it has no live value.
func (c *Client) Expire(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 || ttl.Milliseconds() == 0 {
		return kverr.Errorf(ErrBadTTL, "expire needs a ttl of at least 1ms, got %v", ttl)
	}
	return c.expire(ctx, &op{kind: opExpire, key: []byte(key), ttlMs: ttl.Milliseconds()})
}

// Persist removes key's expiry, keeping its value; ErrNotFound when it has
// no live value.
func (c *Client) Persist(ctx context.Context, key string) error {
	return c.expire(ctx, &op{kind: opExpire, key: []byte(key), persist: true})
}

func (c *Client) expire(ctx context.Context, o *op) error {
	resp, err := c.do(ctx, o)
	if err != nil {
		return err
	}
	if resp.Status == kvpb.Status_NOT_FOUND {
		return ErrNotFound
	}
	return nil
}

// opts applies the call's options.
func (c *Client) opts(opts []OpOption) opOptions {
	var o opOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}
