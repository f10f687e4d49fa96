package kvserver

import (
	"context"
	"errors"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// kvService adapts the KV gRPC service: validate, call, translate.
type kvService struct {
	kvpb.UnimplementedKVServer
	s *Server
}

func (k *kvService) Put(ctx context.Context, r *kvpb.PutRequest) (*kvpb.Response, error) {
	return k.s.servePut(ctx, r)
}

func (k *kvService) Get(ctx context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	return k.s.serveGet(ctx, r)
}

func (k *kvService) Delete(ctx context.Context, r *kvpb.DeleteRequest) (*kvpb.Response, error) {
	return k.s.serveDelete(ctx, r)
}

func (k *kvService) Incr(ctx context.Context, r *kvpb.IncrRequest) (*kvpb.Response, error) {
	return k.s.serveIncr(ctx, r)
}

func (k *kvService) Expire(ctx context.Context, r *kvpb.ExpireRequest) (*kvpb.Response, error) {
	return k.s.serveExpire(ctx, r)
}

// Batch serves the batched data path: the same three operations, many per
// message (batch.go).
func (k *kvService) Batch(stream kvpb.KV_BatchServer) error {
	return k.s.serveBatch(stream)
}

// servePut, serveGet and serveDelete are the one implementation of the key
// operations behind both the unary RPCs and the Batch stream: metrics, the
// domain call (auth, namespace, rate limit, limits, routing) and the
// translation of its error to a gRPC status.
func (s *Server) servePut(ctx context.Context, r *kvpb.PutRequest) (*kvpb.Response, error) {
	defer s.metrics.observe(opPut, time.Now())
	resp, err := s.put(ctx, r)
	return s.metrics.result(opPut, s.servedBy(resp), toStatus(err))
}

func (s *Server) serveGet(ctx context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	defer s.metrics.observe(opGet, time.Now())
	resp, err := s.get(ctx, r)
	return s.metrics.result(opGet, s.servedBy(resp), toStatus(err))
}

func (s *Server) serveDelete(ctx context.Context, r *kvpb.DeleteRequest) (*kvpb.Response, error) {
	defer s.metrics.observe(opDelete, time.Now())
	resp, err := s.del(ctx, r)
	return s.metrics.result(opDelete, s.servedBy(resp), toStatus(err))
}

func (s *Server) serveIncr(ctx context.Context, r *kvpb.IncrRequest) (*kvpb.Response, error) {
	defer s.metrics.observe(opIncr, time.Now())
	resp, err := s.incr(ctx, r)
	return s.metrics.result(opIncr, s.servedBy(resp), toStatus(err))
}

func (s *Server) serveExpire(ctx context.Context, r *kvpb.ExpireRequest) (*kvpb.Response, error) {
	defer s.metrics.observe(opExpire, time.Now())
	resp, err := s.expireKey(ctx, r)
	return s.metrics.result(opExpire, s.servedBy(resp), toStatus(err))
}

// servedBy names this server in an answer it gave (a forwarded answer
// names the server it came from already).
func (s *Server) servedBy(resp *kvpb.Response) *kvpb.Response {
	if resp != nil && resp.Server == "" {
		resp.Server = s.cfg.ID
	}
	return resp
}

func (k *kvService) GetRing(context.Context, *kvpb.GetRingRequest) (*kvpb.RingResponse, error) {
	cur := k.s.ring.Load()
	if cur == nil {
		return &kvpb.RingResponse{}, nil
	}
	return &kvpb.RingResponse{Epoch: cur.Epoch, Ring: cur.raw}, nil
}

func (k *kvService) KeyRange(context.Context, *kvpb.KeyRangeRequest) (*kvpb.KeyRangeResponse, error) {
	cur := k.s.ring.Load()
	if cur == nil {
		return nil, toStatus(ErrNotInRing)
	}
	return &kvpb.KeyRangeResponse{Ranges: cur.KeyRange()}, nil
}

func (k *kvService) KeyRangeRead(context.Context, *kvpb.KeyRangeRequest) (*kvpb.KeyRangeResponse, error) {
	cur := k.s.ring.Load()
	if cur == nil {
		return nil, toStatus(ErrNotInRing)
	}
	return &kvpb.KeyRangeResponse{Ranges: cur.KeyRangeRead()}, nil
}

func (k *kvService) Login(ctx context.Context, r *kvpb.LoginRequest) (*kvpb.LoginResponse, error) {
	defer k.s.metrics.observe("login", time.Now())
	resp, err := k.s.login(ctx, r)
	return resp, toStatus(err)
}

func (s *Server) put(ctx context.Context, r *kvpb.PutRequest) (*kvpb.Response, error) {
	return headWrite(s, ctx, r, r.Header, r.Key, kvpb.KVClient.Put, putOp(r))
}

// opBuild makes a write's storage op, within the ring's limits, for the
// caller's namespace.
type opBuild func(ns []byte, lim ringmeta.Limits) (storage.Op, error)

func putOp(r *kvpb.PutRequest) opBuild {
	return func(ns []byte, lim ringmeta.Limits) (storage.Op, error) {
		if err := checkKV(lim, r.Key, r.Value, r.TtlMs); err != nil {
			return storage.Op{}, err
		}
		cond, err := condOf(r.Cond)
		op := storage.Op{Kind: storage.OpPut, NS: ns, Key: r.Key, Value: r.Value, Cond: cond, ReturnPrev: r.ReturnPrevious}
		if r.TtlMs > 0 {
			op.ExpiryMs = nowMs() + r.TtlMs
		}
		return op, err
	}
}

func (s *Server) del(ctx context.Context, r *kvpb.DeleteRequest) (*kvpb.Response, error) {
	return headWrite(s, ctx, r, r.Header, r.Key, kvpb.KVClient.Delete, delOp(r))
}

func delOp(r *kvpb.DeleteRequest) opBuild {
	return func(ns []byte, lim ringmeta.Limits) (storage.Op, error) {
		if err := checkKV(lim, r.Key, nil, 0); err != nil {
			return storage.Op{}, err
		}
		cond, err := condOf(r.Cond)
		return storage.Op{Kind: storage.OpDelete, NS: ns, Key: r.Key, Cond: cond}, err
	}
}

// headWrite runs the write r (header h, of key) at the key's head: here,
// as the op build makes of it within the ring's limits, or, when another
// server is the head, forwarded there with send.
func headWrite[R proto.Message](s *Server, ctx context.Context, r R, h *kvpb.RequestHeader, key []byte,
	send func(kvpb.KVClient, context.Context, R, ...grpc.CallOption) (*kvpb.Response, error),
	build opBuild) (*kvpb.Response, error) {
	ns, rt, fwd, err := headRoute(s, ctx, r, h, key, send)
	switch {
	case err != nil:
		return nil, err
	case fwd != nil:
		return fwd(ctx)
	}
	op, err := build(ns, rt.ring.Limits)
	if err != nil {
		return nil, err
	}
	return s.write(ctx, rt, h, op)
}

// headRoute admits the caller of write r and finds the key's head: when it
// is this server, the caller's namespace and the route; else fwd, which
// forwards r there with send (or answers why it cannot).
func headRoute[R proto.Message](s *Server, ctx context.Context, r R, h *kvpb.RequestHeader, key []byte,
	send func(kvpb.KVClient, context.Context, R, ...grpc.CallOption) (*kvpb.Response, error),
) (ns []byte, rt route, fwd func(context.Context) (*kvpb.Response, error), err error) {
	ns, err = s.caller(ctx, h)
	if err != nil {
		return nil, route{}, nil, err
	}
	rt, resp := s.locate(h, ns, key, true)
	if resp != nil {
		return ns, rt, func(ctx context.Context) (*kvpb.Response, error) {
			return s.forwardOr(ctx, resp, h, ns, key, toHead, func(ctx context.Context, kv kvpb.KVClient, fh *kvpb.RequestHeader) (*kvpb.Response, error) {
				fr := proto.Clone(r).(R)
				m := fr.ProtoReflect()
				m.Set(m.Descriptor().Fields().ByName("header"), protoreflect.ValueOfMessage(fh.ProtoReflect()))
				return send(kv, ctx, fr)
			})
		}, nil
	}
	return ns, rt, nil, nil
}

func (s *Server) get(ctx context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	ns, err := s.caller(ctx, r.Header)
	if err != nil {
		return nil, err
	}
	rt, resp := s.locateRead(r.Header, ns, r.Key, r.AnyMember)
	if resp != nil {
		return s.forwardOr(ctx, resp, r.Header, ns, r.Key, toTail, func(ctx context.Context, kv kvpb.KVClient, h *kvpb.RequestHeader) (*kvpb.Response, error) {
			fr := proto.Clone(r).(*kvpb.GetRequest)
			fr.Header = h
			return kv.Get(ctx, fr)
		})
	}
	if err := checkKV(rt.ring.Limits, r.Key, nil, 0); err != nil {
		return nil, err
	}
	rec, found, err := s.core.read(rt.partition, chainsm.ReadReq{Ver: rt.chain.Version, NS: ns, Key: r.Key, AnyMember: r.AnyMember})
	if resp := readRefused(rt, err); resp != nil {
		return resp, nil
	}
	switch {
	case err != nil:
		return nil, err
	case !found:
		return &kvpb.Response{Status: kvpb.Status_NOT_FOUND, Epoch: rt.ring.Epoch}, nil
	}
	resp = &kvpb.Response{Status: kvpb.Status_SUCCESS, Value: rec.Value, Epoch: rt.ring.Epoch, Version: rec.Seq}
	if rec.ExpiryMs != 0 {
		resp.TtlMs = max(rec.ExpiryMs-nowMs(), 1) // live here: at least 1 ms left
	}
	return resp, nil
}

// readRefused is the answer to a read (or scan page) the node refused
// with err, or nil for any other error.
func readRefused(rt route, err error) *kvpb.Response {
	switch {
	case errors.Is(err, chainsm.ErrNotResponsible):
		return notResponsible(rt.ring, "partition is changing chains here")
	case errors.Is(err, chainsm.ErrNotReady):
		return &kvpb.Response{Status: kvpb.Status_SERVER_NOT_READY, Epoch: rt.ring.Epoch, Message: "read lease pending"}
	case errors.Is(err, chainsm.ErrReadFromTail):
		return &kvpb.Response{Status: kvpb.Status_READ_FROM_TAIL, Epoch: rt.ring.Epoch, Message: "key has a write in flight"}
	}
	return nil
}
