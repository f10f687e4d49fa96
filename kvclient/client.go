package kvclient

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ecskv/ecskv/common/grpcopt"
	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// maxMsgBytes bounds one gRPC message; the cluster's own key and value limits
// (checked before sending) are far lower.
const maxMsgBytes = 96 << 20

// Client is an ecskv client. Create it with New.
type Client struct {
	cfg      Config
	lg       *zap.Logger
	rings    *ringCache
	tr       transport
	conns    *connPool
	lat      *latencies
	creds    credentials
	clientID uint64
	seq      atomic.Uint64
	closed   atomic.Bool
	unary    bool   // WithUnaryCalls: one unary RPC per call instead of the Batch stream
	ns       string // WithNamespace: every call runs there, without a login
}

// New connects to the cluster named by cfg (servers or etcd) and loads the
// ring. It fails when no ring can be read before ctx ends.
func New(ctx context.Context, cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, lg: zap.NewNop(), clientID: randomID(), lat: newLatencies()}
	for _, o := range opts {
		o(c)
	}
	if err := c.creds.from(cfg); err != nil {
		return nil, err
	}
	creds, err := tlsutil.DialOption(cfg.Files(tlsutil.ClientName))
	if err != nil {
		return nil, fmt.Errorf("kvclient: %w", err)
	}
	c.conns = newConnPool(append([]grpc.DialOption{creds, grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(maxMsgBytes), grpc.MaxCallSendMsgSize(maxMsgBytes))}, grpcopt.Dial()...)...)
	ss := &serverSource{seeds: cfg.Servers, conns: c.conns}
	if !cfg.TLS.Enabled() {
		ss.hint = " (a secure cluster needs --certs-dir or --cacert, --cert and --key)"
	}
	var src ringSource = ss
	if len(cfg.Servers) == 0 {
		es, err := newEtcdSource(cfg)
		if err != nil {
			return nil, err
		}
		src = es
	}
	c.rings = &ringCache{src: src}
	c.tr = newBatchTransport(c.conns)
	if c.unary {
		c.tr = &unaryTransport{conns: c.conns}
	}
	fctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	rr, err := c.rings.refresh(fctx, 0)
	if err == nil && rr.Auth && c.User() != "" && c.ns == "" {
		// Log in now, so wrong credentials show at once; when no server
		// can answer, the first call logs in (and retries) instead.
		if _, _, err = c.token(fctx, ""); errors.Is(err, ErrUnavailable) {
			err = nil
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the client's connections.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.tr.close()
	return errors.Join(err, c.rings.src.close())
}

// Ring returns the newest ring the client has seen.
func (c *Client) Ring() *ringmeta.Ring { return c.rings.get().Ring }

// RefreshRing fetches the current ring now.
func (c *Client) RefreshRing(ctx context.Context) (*ringmeta.Ring, error) {
	r, err := c.rings.refresh(ctx, c.rings.get().Epoch)
	if err != nil {
		return nil, err
	}
	return r.Ring, nil
}

// Put stores value under key: Created for a new key, Updated for an
// overwrite. With a condition (IfAbsent, IfExists, IfValue, IfVersion) it
// writes only if the condition holds at the key's head, in the order of
// the key's writes, else it returns ErrConditionFailed.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...OpOption) (PutResult, error) {
	o := c.opts(opts)
	if o.ttl < 0 {
		return 0, kverr.Errorf(ErrBadTTL, "got %v", o.ttl)
	}
	resp, err := c.do(ctx, &op{kind: opPut, key: []byte(key), value: value, ttlMs: o.ttl.Milliseconds(), cond: o.cond, prev: o.prev})
	if err != nil {
		return 0, err
	}
	o.served(resp)
	o.fill(resp)
	if err := writeOutcome(resp.Status); err != nil {
		return 0, err
	}
	if resp.Status == kvpb.Status_UPDATE {
		return Updated, nil
	}
	return Created, nil
}

// Get returns key's value, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key string, opts ...OpOption) ([]byte, error) {
	o := opOptions{nearest: c.cfg.ReadMode == config.ReadNearest}
	for _, f := range opts {
		f(&o)
	}
	resp, err := c.do(ctx, &op{kind: opGet, key: []byte(key), nearest: o.nearest})
	if err != nil {
		return nil, err
	}
	o.served(resp)
	o.fill(resp)
	if resp.Status == kvpb.Status_NOT_FOUND {
		return nil, ErrNotFound
	}
	return resp.Value, nil
}

// Delete removes key; ErrNotFound when it did not exist. With a condition
// (IfValue, IfVersion, ...) it deletes only if the condition holds, else
// ErrConditionFailed.
func (c *Client) Delete(ctx context.Context, key string, opts ...OpOption) error {
	o := c.opts(opts)
	resp, err := c.do(ctx, &op{kind: opDelete, key: []byte(key), cond: o.cond})
	if err != nil {
		return err
	}
	o.served(resp)
	o.fill(resp)
	if err := writeOutcome(resp.Status); err != nil {
		return err
	}
	if resp.Status == kvpb.Status_NOT_FOUND {
		return ErrNotFound
	}
	return nil
}

// KeyRange returns the ECE419 keyrange string of the current ring.
func (c *Client) KeyRange(ctx context.Context) (string, error) {
	r, err := c.RefreshRing(ctx)
	if err != nil {
		return "", err
	}
	return r.KeyRange(), nil
}

// KeyRangeRead returns the ECE419 keyrange_read string of the current ring.
func (c *Client) KeyRangeRead(ctx context.Context) (string, error) {
	r, err := c.RefreshRing(ctx)
	if err != nil {
		return "", err
	}
	return r.KeyRangeRead(), nil
}

func randomID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// withDefaultTimeout applies the configured request timeout when ctx has no
// deadline of its own.
func (c *Client) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}
