package kvclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// routedRing is a published ring plus an address index for routing.
type routedRing struct {
	*ringmeta.Ring
	addr map[string]string          // server id -> address
	srv  map[string]ringmeta.Server // server id -> server, for its zone and coords
}

func newRoutedRing(r *ringmeta.Ring) *routedRing {
	rr := &routedRing{Ring: r, addr: make(map[string]string, len(r.Servers)), srv: make(map[string]ringmeta.Server, len(r.Servers))}
	for _, s := range r.Servers {
		rr.addr[s.ID], rr.srv[s.ID] = s.Addr, s
	}
	return rr
}

// ringSource fetches the current ring.
type ringSource interface {
	fetch(ctx context.Context, last *routedRing) (*ringmeta.Ring, error)
	close() error
}

// etcdSource reads the ring key from etcd.
type etcdSource struct {
	cli       *clientv3.Client
	key       string
	endpoints []string
	hint      string // added to read errors when an endpoint listens
}

// newEtcdSource dials etcd. A secure cluster's embedded etcd refuses client
// certificates (it holds the password hashes): such clients use --server.
func newEtcdSource(cfg Config) (*etcdSource, error) {
	tlsCfg, err := tlsutil.EtcdConfig(cfg.EtcdFiles(tlsutil.ClientName), cfg.EtcdEndpoints)
	if err != nil {
		return nil, fmt.Errorf("kvclient: etcd TLS: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.EtcdEndpoints, DialTimeout: cfg.DialTimeout, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("kvclient: etcd %v: %w", cfg.EtcdEndpoints, err)
	}
	es := &etcdSource{cli: cli, key: etcdkeys.Ring(cfg.Cluster), endpoints: cfg.EtcdEndpoints}
	if cfg.TLS.Enabled() {
		es.hint = " (a secure cluster's etcd admits only its members: use --server HOST:PORT)"
	}
	return es, nil
}

func (s *etcdSource) fetch(ctx context.Context, _ *routedRing) (*ringmeta.Ring, error) {
	resp, err := s.cli.Get(ctx, s.key)
	if err != nil {
		return nil, fmt.Errorf("kvclient: read ring from etcd: %w%s", err, reachHint(s.endpoints, s.hint))
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNoLayout
	}
	return ringmeta.Unmarshal(resp.Kvs[0].Value)
}

func (s *etcdSource) close() error { return s.cli.Close() }

// serverSource asks kvservers for their ring: the configured seeds first,
// then every server of the last ring, so losing the seed is survivable.
type serverSource struct {
	seeds []string
	conns *connPool
	hint  string // added when no server answers
}

func (s *serverSource) fetch(ctx context.Context, last *routedRing) (*ringmeta.Ring, error) {
	cands := append([]string(nil), s.seeds...)
	if last != nil {
		for _, a := range last.addr {
			cands = append(cands, a)
		}
	}
	var errs []error
	for _, addr := range cands {
		conn, err := s.conns.get(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := kvpb.NewKVClient(conn).GetRing(actx, &kvpb.GetRingRequest{})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, kverr.FromStatus(err)))
			continue
		}
		if len(resp.Ring) == 0 {
			errs = append(errs, fmt.Errorf("%s: %w", addr, ErrNoLayout))
			continue
		}
		return ringmeta.Unmarshal(resp.Ring)
	}
	return nil, fmt.Errorf("kvclient: no server gave a ring%s: %w", reachHint(cands, s.hint), errors.Join(errs...))
}

func (s *serverSource) close() error { return nil }

// reachHint says why none of addrs answered: nothing listens at any of
// them (a TCP connection is refused or times out), or else hint, the
// likely cause of an address that listens but does not answer.
func reachHint(addrs []string, hint string) string {
	for _, a := range addrs {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "https://"), "http://")
		if c, err := net.DialTimeout("tcp", a, 500*time.Millisecond); err == nil {
			_ = c.Close()
			return hint
		}
	}
	return fmt.Sprintf(" (nothing listening at %s: is the cluster running there?)", strings.Join(addrs, ", "))
}

// ringCache holds the newest ring seen and coalesces concurrent refreshes.
type ringCache struct {
	src ringSource

	mu       sync.Mutex // guards cur and inflight
	cur      *routedRing
	inflight chan struct{}
	lastErr  error
}

func (rc *ringCache) get() *routedRing {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.cur
}

// refresh fetches a ring unless one newer than epoch is already cached;
// callers arriving during a fetch wait for it instead of fetching again.
func (rc *ringCache) refresh(ctx context.Context, epoch uint64) (*routedRing, error) {
	rc.mu.Lock()
	if rc.cur != nil && rc.cur.Epoch > epoch {
		defer rc.mu.Unlock()
		return rc.cur, nil
	}
	if ch := rc.inflight; ch != nil {
		rc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.cur, rc.lastErr
	}
	ch := make(chan struct{})
	rc.inflight = ch
	last := rc.cur
	rc.mu.Unlock()

	r, err := rc.src.fetch(ctx, last)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.inflight = nil
	rc.lastErr = err
	close(ch)
	if err == nil && (rc.cur == nil || r.Epoch >= rc.cur.Epoch) {
		rc.cur = newRoutedRing(r)
	}
	return rc.cur, err
}
