package kvserver

import (
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
)

// route is where a request stands in the current ring.
type route struct {
	ring      *currentRing
	partition int
	chain     ringmeta.Chain
}

// locate finds key's partition and checks this server's role in it: the
// head for writes, the tail for reads. A non-nil response (SERVER_STOPPED,
// SERVER_NOT_RESPONSIBLE with this server's epoch) is the answer to send.
func (s *Server) locate(h *kvpb.RequestHeader, ns, key []byte, write bool) (route, *kvpb.Response) {
	cur, resp := s.serving()
	if resp != nil {
		return route{}, resp
	}
	return s.locatePart(cur, h, cur.PartitionOf(ns, key), write)
}

// serving returns the current ring, or SERVER_STOPPED while the server
// has none or is stopping.
func (s *Server) serving() (*currentRing, *kvpb.Response) {
	cur := s.ring.Load()
	if s.stopped.Load() || cur == nil || len(cur.Chains) == 0 {
		return nil, &kvpb.Response{Status: kvpb.Status_SERVER_STOPPED, Message: "server is not serving (not in the ring yet, or stopping)", Epoch: epochOf(cur)}
	}
	return cur, nil
}

// locatePart is locate for partition p of cur.
func (s *Server) locatePart(cur *currentRing, h *kvpb.RequestHeader, p int, write bool) (route, *kvpb.Response) {
	ch := cur.Chain(p)
	want := ch.Tail()
	if write {
		want = ch.Head()
	}
	if want != s.cfg.ID {
		return route{}, notResponsible(cur, fmt.Sprintf("partition %d is served by %q", p, want))
	}
	// Fencing: a request routed by another chain version is stale on one side
	// or the other; either way the client refreshes and retries.
	if h != nil && h.ChainVersion != 0 && h.ChainVersion != ch.Version {
		return route{}, notResponsible(cur, fmt.Sprintf("partition %d is at chain version %d, request has %d", p, ch.Version, h.ChainVersion))
	}
	return route{ring: cur, partition: p, chain: ch}, nil
}

// locateRead is locate for reads: the tail, or with anyMember any full
// member of the chain (CRAQ; the read itself checks the key is clean).
func (s *Server) locateRead(h *kvpb.RequestHeader, ns, key []byte, anyMember bool) (route, *kvpb.Response) {
	if !anyMember {
		return s.locate(h, ns, key, false)
	}
	cur, resp := s.serving()
	if resp != nil {
		return route{}, resp
	}
	p := cur.PartitionOf(ns, key)
	ch := cur.Chain(p)
	if ch.Index(s.cfg.ID) < 0 {
		return route{}, notResponsible(cur, fmt.Sprintf("not a member of partition %d", p))
	}
	return route{ring: cur, partition: p, chain: ch}, nil
}

func notResponsible(cur *currentRing, msg string) *kvpb.Response {
	return &kvpb.Response{Status: kvpb.Status_SERVER_NOT_RESPONSIBLE, Epoch: cur.Epoch, Message: msg}
}

func epochOf(cur *currentRing) uint64 {
	if cur == nil {
		return 0
	}
	return cur.Epoch
}

// checkKV enforces the cluster's limits before anything is stored.
func checkKV(lim ringmeta.Limits, key, value []byte, ttlMs int64) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > lim.MaxKeyBytes:
		return tooLarge(ErrKeyTooLarge, len(key), lim.MaxKeyBytes)
	case len(value) > lim.MaxValueBytes:
		return tooLarge(ErrValueTooLarge, len(value), lim.MaxValueBytes)
	case ttlMs < 0 || ttlMs > MaxTTLMs:
		return fmt.Errorf("%w: %d ms", ErrBadTTL, ttlMs)
	}
	return nil
}
