package kvclient

import (
	"context"
	"sync"
)

// maxMultiInflight bounds the operations one MGet or MPut has in flight:
// they share the client's Batch streams, which carry many at once, so this
// only keeps a call over a huge list from holding that many goroutines.
const maxMultiInflight = 256

// GetResult is one key's answer in MGet: its value, or Err (ErrNotFound
// for a missing key).
type GetResult struct {
	Key   string
	Value []byte
	Err   error
}

// PutOutcome is one key's answer in MPut: Created or Updated, or Err.
type PutOutcome struct {
	Key    string
	Result PutResult
	Err    error
}

// MGet reads keys, in the order given, with as many reads in flight as the
// client's Batch streams carry. Each read is an ordinary Get (linearizable,
// with its own retries); together they are not a snapshot: a write may land
// between two of them. opts apply to every read.
func (c *Client) MGet(ctx context.Context, keys []string, opts ...OpOption) []GetResult {
	out := make([]GetResult, len(keys))
	c.multi(len(keys), func(i int) {
		v, err := c.Get(ctx, keys[i], opts...)
		out[i] = GetResult{Key: keys[i], Value: v, Err: err}
	})
	return out
}

// MPut writes kvs, in the order given, with as many writes in flight as
// the client's Batch streams carry. Each write is an ordinary Put
// (exactly-once under retries); together they are not atomic: some may
// fail, or be applied in another order, while others succeed. A key given
// twice gets one of its values. opts apply to every write.
func (c *Client) MPut(ctx context.Context, kvs []KV, opts ...OpOption) []PutOutcome {
	out := make([]PutOutcome, len(kvs))
	c.multi(len(kvs), func(i int) {
		res, err := c.Put(ctx, kvs[i].Key, kvs[i].Value, opts...)
		out[i] = PutOutcome{Key: kvs[i].Key, Result: res, Err: err}
	})
	return out
}

// multi runs op(0..n-1), at most maxMultiInflight at once, and waits.
func (c *Client) multi(n int, op func(i int)) {
	slots := make(chan struct{}, maxMultiInflight)
	var wg sync.WaitGroup
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			op(i)
		})
	}
	wg.Wait()
}
