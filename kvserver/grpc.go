package kvserver

import (
	"context"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// kvService adapts the KV gRPC service: validate, call, translate.
type kvService struct {
	kvpb.UnimplementedKVServer
	s *Server
}

func (k *kvService) Put(_ context.Context, r *kvpb.PutRequest) (*kvpb.Response, error) {
	defer k.s.metrics.observe("put", time.Now())
	resp, err := k.s.put(r)
	return k.s.metrics.result("put", resp, toStatus(err))
}

func (k *kvService) Get(_ context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	defer k.s.metrics.observe("get", time.Now())
	resp, err := k.s.get(r)
	return k.s.metrics.result("get", resp, toStatus(err))
}

func (k *kvService) Delete(_ context.Context, r *kvpb.DeleteRequest) (*kvpb.Response, error) {
	defer k.s.metrics.observe("delete", time.Now())
	resp, err := k.s.del(r)
	return k.s.metrics.result("delete", resp, toStatus(err))
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

func (k *kvService) Login(context.Context, *kvpb.LoginRequest) (*kvpb.LoginResponse, error) {
	return nil, toStatus(ErrAuthDisabled)
}

// namespace is the caller's key namespace: empty while authentication is off.
func namespace(*kvpb.RequestHeader) []byte { return nil }

func (s *Server) put(r *kvpb.PutRequest) (*kvpb.Response, error) {
	ns := namespace(r.Header)
	rt, resp := s.locate(r.Header, ns, r.Key, true)
	if resp != nil {
		return resp, nil
	}
	if err := checkKV(rt.ring.Limits, r.Key, r.Value, r.TtlMs); err != nil {
		return nil, err
	}
	op := storage.Op{Kind: storage.OpPut, NS: ns, Key: r.Key, Value: r.Value}
	if r.TtlMs > 0 {
		op.ExpiryMs = nowMs() + r.TtlMs
	}
	existed, err := s.applyWrite(rt.partition, op)
	if err != nil {
		return nil, err
	}
	st := kvpb.Status_SUCCESS
	if existed {
		st = kvpb.Status_UPDATE
	}
	return &kvpb.Response{Status: st, Epoch: rt.ring.Epoch}, nil
}

func (s *Server) del(r *kvpb.DeleteRequest) (*kvpb.Response, error) {
	ns := namespace(r.Header)
	rt, resp := s.locate(r.Header, ns, r.Key, true)
	if resp != nil {
		return resp, nil
	}
	if err := checkKV(rt.ring.Limits, r.Key, nil, 0); err != nil {
		return nil, err
	}
	existed, err := s.applyWrite(rt.partition, storage.Op{Kind: storage.OpDelete, NS: ns, Key: r.Key})
	if err != nil {
		return nil, err
	}
	st := kvpb.Status_SUCCESS
	if !existed {
		st = kvpb.Status_NOT_FOUND
	}
	return &kvpb.Response{Status: st, Epoch: rt.ring.Epoch}, nil
}

func (s *Server) get(r *kvpb.GetRequest) (*kvpb.Response, error) {
	ns := namespace(r.Header)
	rt, resp := s.locate(r.Header, ns, r.Key, false)
	if resp != nil {
		return resp, nil
	}
	if err := checkKV(rt.ring.Limits, r.Key, nil, 0); err != nil {
		return nil, err
	}
	rec, ok, err := s.store.Get(rt.partition, ns, r.Key, nowMs())
	if err != nil {
		return nil, err
	}
	if !ok {
		return &kvpb.Response{Status: kvpb.Status_NOT_FOUND, Epoch: rt.ring.Epoch}, nil
	}
	return &kvpb.Response{Status: kvpb.Status_SUCCESS, Value: rec.Value, Epoch: rt.ring.Epoch}, nil
}
