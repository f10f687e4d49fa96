package kvserver

import (
	"context"
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Conditional writes, increments and expiry changes are resolved at the
// head, in the order of the partition's writes, against the key's value as
// every earlier write left it (storage.Outcome): they are linearizable like
// every write, and what goes down the chain is the plain write they became.

// condOf converts a request's condition; nil is none.
func condOf(c *kvpb.Condition) (storage.Cond, error) {
	if c == nil {
		return storage.Cond{}, nil
	}
	k := storage.CondNone
	switch c.Kind {
	case kvpb.Condition_NONE:
	case kvpb.Condition_ABSENT:
		k = storage.CondAbsent
	case kvpb.Condition_EXISTS:
		k = storage.CondExists
	case kvpb.Condition_VALUE:
		k = storage.CondValue
	case kvpb.Condition_VERSION:
		k = storage.CondVersion
	default:
		return storage.Cond{}, fmt.Errorf("%w: %d", ErrBadCondition, c.Kind)
	}
	return storage.Cond{Kind: k, Value: c.Value, Version: c.Version}, nil
}

func (s *Server) incr(ctx context.Context, r *kvpb.IncrRequest) (*kvpb.Response, error) {
	return headWrite(s, ctx, r, r.Header, r.Key, kvpb.KVClient.Incr, func(ns []byte, lim ringmeta.Limits) (storage.Op, error) {
		return storage.Op{Kind: storage.OpIncr, NS: ns, Key: r.Key, Delta: r.Delta}, checkKV(lim, r.Key, nil, 0)
	})
}

func (s *Server) expireKey(ctx context.Context, r *kvpb.ExpireRequest) (*kvpb.Response, error) {
	return headWrite(s, ctx, r, r.Header, r.Key, kvpb.KVClient.Expire, func(ns []byte, lim ringmeta.Limits) (storage.Op, error) {
		op := storage.Op{Kind: storage.OpExpire, NS: ns, Key: r.Key}
		switch {
		case r.Persist && r.TtlMs != 0:
			return op, fmt.Errorf("%w: persist with a ttl of %d ms", ErrBadTTL, r.TtlMs)
		case !r.Persist && r.TtlMs == 0:
			return op, fmt.Errorf("%w: an expire needs a ttl > 0 or persist", ErrBadTTL)
		case !r.Persist:
			op.ExpiryMs = nowMs() + r.TtlMs
		}
		return op, checkKV(lim, r.Key, nil, r.TtlMs)
	})
}

// errAtExpiry refuses a conditional write to a key within the clock-skew
// window around its expiry, where servers may disagree whether it is live
// (DESIGN §6): the client retries shortly, as for a read there.
var errAtExpiry = fmt.Errorf("%w: key at its expiry", chainsm.ErrNotReady)

// atExpiry reports whether op must wait because it reads a key that is
// within the skew window of its expiry at wallMs, as storage holds it now.
func (c *core) atExpiry(p int, op storage.Op, wallMs int64) bool {
	if !storage.HeadOp(op) {
		return false
	}
	rec, ok, err := c.s.store.Get(p, op.NS, op.Key, 0)
	if err != nil || !ok || rec.ExpiryMs == 0 {
		return false // a read error fails the write at apply
	}
	live, expired := chainsm.ExpiryVerdict(wallMs, rec.ExpiryMs, maxClockSkew.Milliseconds())
	return !live && !expired
}

// writeResponse is a committed write's answer.
func writeResponse(a chainsm.Answer, op storage.Op, epoch uint64) *kvpb.Response {
	resp := &kvpb.Response{Status: a.Status, Epoch: epoch, Value: a.Res.Value, Existed: a.Res.Existed}
	switch {
	case a.Status == kvpb.Status_CONDITION_FAILED:
		resp.Version = a.Res.Version
	case op.Kind != storage.OpDelete && (a.Status == kvpb.Status_SUCCESS || a.Status == kvpb.Status_UPDATE):
		resp.Version = a.Seq // the write's seq is the version it gave the key
	}
	return resp
}
