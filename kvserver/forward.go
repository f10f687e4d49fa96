package kvserver

import (
	"context"
	"fmt"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/protobuf/proto"
)

// ErrTooManyForwards refuses a request this server would forward while
// max-forwards requests are being forwarded.
var ErrTooManyForwards = kverr.ErrTooManyForwards

// Roles a forwarded request goes to.
const (
	toHead = iota // writes
	toTail        // reads
)

// forwardCall sends a forwarded request with header h to the server kv.
type forwardCall func(ctx context.Context, kv kvpb.KVClient, h *kvpb.RequestHeader) (*kvpb.Response, error)

// forward sends a request for a key this server does not serve in that
// role to the server that does in its current ring (DESIGN §7: any server
// answers any key), over the connection the chain's messages use, within
// the caller's deadline. The forwarded header carries this ring's epoch
// and chain version, so a server with another view refuses it rather than
// serving it, and names this server, so it is never forwarded again.
//
// ok is false when forwarding does not apply (off, already forwarded, a
// request routed by another chain version than this server's, this server
// is that member but the request is stale, or the member is unknown):
// refused stays the answer then.
func (s *Server) forward(ctx context.Context, h *kvpb.RequestHeader, ns, key []byte, role int, call forwardCall) (resp *kvpb.Response, err error, ok bool) {
	if !s.cfg.Forward || h.GetForwardedBy() != "" {
		return nil, nil, false
	}
	cur := s.ring.Load()
	if cur == nil || len(cur.Chains) == 0 {
		return nil, nil, false
	}
	p := cur.PartitionOf(ns, key)
	ch := cur.Chain(p)
	to := ch.Head()
	if role == toTail {
		to = ch.Tail()
	}
	srv, known := cur.Server(to)
	if to == "" || to == s.cfg.ID || !known || srv.Addr == "" {
		return nil, nil, false
	}
	if v := h.GetChainVersion(); v != 0 && v != ch.Version {
		return nil, nil, false // the client's view differs: it refreshes
	}
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		s.metrics.forwarded.WithLabelValues("refused").Inc()
		return nil, ErrTooManyForwards, true
	}
	conn, err := s.peers.conn(srv.Addr)
	if err != nil {
		s.metrics.forwarded.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("kvserver: forward to %s: %w", to, err), true
	}
	fh := proto.Clone(h).(*kvpb.RequestHeader)
	if fh == nil {
		fh = &kvpb.RequestHeader{}
	}
	fh.Epoch, fh.ChainVersion, fh.ForwardedBy = cur.Epoch, ch.Version, s.cfg.ID
	resp, err = call(ctx, kvpb.NewKVClient(conn), fh)
	if err != nil {
		s.metrics.forwarded.WithLabelValues("error").Inc()
		return nil, err, true
	}
	s.metrics.forwarded.WithLabelValues("ok").Inc()
	return resp, nil, true
}

// forwardOr forwards a request that locate refused (resp) when it is
// SERVER_NOT_RESPONSIBLE and forwarding applies; else resp is the answer.
func (s *Server) forwardOr(ctx context.Context, resp *kvpb.Response, h *kvpb.RequestHeader, ns, key []byte, role int, call forwardCall) (*kvpb.Response, error) {
	if resp.Status != kvpb.Status_SERVER_NOT_RESPONSIBLE {
		return resp, nil
	}
	if fresp, err, ok := s.forward(ctx, h, ns, key, role, call); ok {
		return fresp, err
	}
	return resp, nil
}
