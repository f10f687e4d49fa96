package kvclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/scancursor"
)

// DefaultScanLimit is the page size of a Scan called with limit <= 0.
const DefaultScanLimit = 1000

// KV is one key of a Scan and its value (nil with WithKeysOnly).
type KV struct {
	Key   string
	Value []byte
}

// WithKeysOnly makes a Scan return keys without their values.
func WithKeysOnly() OpOption { return func(o *opOptions) { o.keysOnly = true } }

// Scan returns the next page of the caller's keys that start with prefix,
// from cursor ("" starts a scan), and the cursor to pass next; "" once the
// scan is done. A page holds at most limit keys (<= 0: DefaultScanLimit;
// servers cap it at their scan-max-page-keys and pages at about their
// scan-max-page-bytes), and may be empty before the end.
//
// Partitions are walked in turn, each from its tail (where a Get of its
// keys is served), in key order within one partition and in no useful
// order across them. The cursor names a partition and the last key seen
// there, nothing a server keeps, so a scan resumes across reconnects,
// failovers and rebalancing, from another client too. Guarantee: a key
// that exists from the scan's first call to its last (whether or not its
// value changes meanwhile) is returned exactly once, with a committed
// value; a key created, deleted or expiring during the scan may or may
// not be. Expired keys are not returned.
func (c *Client) Scan(ctx context.Context, prefix, cursor string, limit int, opts ...OpOption) ([]KV, string, error) {
	var oo opOptions
	for _, f := range opts {
		f(&oo)
	}
	cur, err := scancursor.Decode(cursor)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadCursor, err)
	}
	if rr := c.rings.get(); rr != nil && cur.Part >= len(rr.Chains) {
		return nil, "", fmt.Errorf("%w: it names partition %d, the cluster has %d", ErrBadCursor, cur.Part, len(rr.Chains))
	}
	if limit <= 0 {
		limit = DefaultScanLimit
	}
	var out []KV
	for {
		o := &op{kind: opScan, key: []byte(prefix), part: cur.Part, cursor: cursor,
			limit: uint32(min(limit-len(out), 1<<31)), keysOnly: oo.keysOnly}
		if _, err := c.do(ctx, o); err != nil {
			if len(out) > 0 && !errors.Is(err, ErrClosed) {
				return out, cursor, nil // keep what came; the next call meets the error again
			}
			return nil, cursor, err
		}
		for _, it := range o.page.Items {
			out = append(out, KV{Key: string(it.Key), Value: it.Value})
		}
		if cursor = o.page.Cursor; cursor == "" {
			return out, "", nil
		}
		if cur, err = scancursor.Decode(cursor); err != nil {
			return nil, "", fmt.Errorf("kvclient: server returned a bad cursor: %w", err)
		}
		// A page cut inside its partition, or enough keys: the caller's
		// turn. Otherwise go on with the next partition.
		if len(cur.After) > 0 || len(out) >= limit {
			return out, cursor, nil
		}
	}
}

// scanCall sends a scan page as a unary call; its answer goes to o.page,
// its status to the retry loop.
func scanCall(ctx context.Context, kv kvpb.KVClient, o *op) (*kvpb.Response, error) {
	page, err := kv.Scan(ctx, &kvpb.ScanRequest{Header: o.header, Prefix: o.key, Cursor: o.cursor, Limit: o.limit, KeysOnly: o.keysOnly})
	if err != nil {
		return nil, err
	}
	o.page = page
	return &kvpb.Response{Status: page.Status, Epoch: page.Epoch, Message: page.Message}, nil
}
