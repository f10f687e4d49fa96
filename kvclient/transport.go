package kvclient

import (
	"context"
	"fmt"
	"sync"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc"
)

// opKind is the kind of a key operation.
type opKind uint8

const (
	opGet opKind = iota
	opPut
	opDelete
	opScan // one page of a scan: a read, routed by partition
	opIncr
	opExpire
	opWatch // a watch stream of one partition (watch.go), routed like a scan
)

// write reports the kinds that change the store.
func (k opKind) write() bool { return k == opPut || k == opDelete || k == opIncr || k == opExpire }

// op is one key operation as the transport sends it. The transport is the
// seam where the batched stream of DESIGN §7 replaces unary calls.
type op struct {
	kind    opKind
	header  *kvpb.RequestHeader
	ns      []byte // the user's namespace on a cluster with authentication
	key     []byte
	value   []byte
	ttlMs   int64
	cond    *kvpb.Condition // put, delete
	prev    bool            // put: return the value replaced
	delta   int64           // incr
	persist bool            // expire: remove the expiry
	nearest bool            // a Get any clean chain member may answer
	toTail  bool            // the nearest member said the key is dirty: ask the tail

	// A scan page (opScan): key is the prefix; the page is read at the
	// tail of partition part, and its answer is left in page.
	part     int
	cursor   string
	limit    uint32
	keysOnly bool
	page     *kvpb.ScanResponse
}

// transport sends one operation to the server at addr.
type transport interface {
	call(ctx context.Context, addr string, o *op) (*kvpb.Response, error)
	close() error
}

// connPool keeps one gRPC connection per server address.
type connPool struct {
	mu    sync.Mutex // guards conns
	conns map[string]*grpc.ClientConn
	opts  []grpc.DialOption
}

// newConnPool dials with opts, which must include transport credentials.
func newConnPool(opts ...grpc.DialOption) *connPool {
	return &connPool{conns: map[string]*grpc.ClientConn{}, opts: opts}
}

func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("kvclient: dial %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, c := range p.conns {
		_ = c.Close()
		delete(p.conns, a)
	}
	return nil
}

// unaryTransport sends every operation as its own unary RPC.
type unaryTransport struct {
	conns *connPool
}

func (t *unaryTransport) call(ctx context.Context, addr string, o *op) (*kvpb.Response, error) {
	conn, err := t.conns.get(addr)
	if err != nil {
		return nil, err
	}
	kv := kvpb.NewKVClient(conn)
	if o.kind == opScan {
		return scanCall(ctx, kv, o)
	}
	bo := o.request(o.header, o.value)
	switch {
	case bo.GetPut() != nil:
		return kv.Put(ctx, bo.GetPut())
	case bo.GetDelete() != nil:
		return kv.Delete(ctx, bo.GetDelete())
	case bo.GetIncr() != nil:
		return kv.Incr(ctx, bo.GetIncr())
	case bo.GetExpire() != nil:
		return kv.Expire(ctx, bo.GetExpire())
	}
	return kv.Get(ctx, bo.GetGet())
}

// request is o as a Batch operation with header h and value; a unary call
// sends its request message (the two paths send the same).
func (o *op) request(h *kvpb.RequestHeader, value []byte) *kvpb.BatchOp {
	bo := &kvpb.BatchOp{}
	switch o.kind {
	case opPut:
		bo.Op = &kvpb.BatchOp_Put{Put: &kvpb.PutRequest{Header: h, Key: o.key, Value: value, TtlMs: o.ttlMs, Cond: o.cond, ReturnPrevious: o.prev}}
	case opDelete:
		bo.Op = &kvpb.BatchOp_Delete{Delete: &kvpb.DeleteRequest{Header: h, Key: o.key, Cond: o.cond}}
	case opIncr:
		bo.Op = &kvpb.BatchOp_Incr{Incr: &kvpb.IncrRequest{Header: h, Key: o.key, Delta: o.delta}}
	case opExpire:
		bo.Op = &kvpb.BatchOp_Expire{Expire: &kvpb.ExpireRequest{Header: h, Key: o.key, TtlMs: o.ttlMs, Persist: o.persist}}
	default:
		bo.Op = &kvpb.BatchOp_Get{Get: &kvpb.GetRequest{Header: h, Key: o.key, AnyMember: o.nearest && !o.toTail}}
	}
	return bo
}

func (t *unaryTransport) close() error { return t.conns.close() }
