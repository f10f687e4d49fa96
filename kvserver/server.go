package kvserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvserver/dht"
	"github.com/ecskv/ecskv/kvserver/resp"
	"github.com/ecskv/ecskv/kvserver/storage"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Server is one kvserver. Create it with New, then Start.
type Server struct {
	cfg config.KVServer
	lg  *zap.Logger

	store  *storage.Store
	fs     vfs.FS // the store's filesystem; nil is the OS's. Tests set vfs.NewMem() before Start.
	etcd   *clientv3.Client
	grpc   *grpc.Server
	lis    net.Listener
	gate   *connGate // lis: the connection bounds
	mux    *replMux  // splits the gate's connections: gRPC, replication
	replIn replConns // replication connections being read
	// replTLS is the client configuration peers' replication connections
	// are dialled with; nil: plaintext.
	replTLS *tls.Config
	// grpcReplOnly makes the server one of a version before the
	// replication transport (tests of rolling upgrades): its port speaks
	// gRPC only and it replicates over gRPC.
	grpcReplOnly bool
	// diskEvery: how often the membership record's store size is
	// refreshed (diskEvery; tests shorten it).
	diskEvery time.Duration
	httpSrv   *http.Server
	metrics   *metrics
	watch     *watchHub           // committed writes for watchers
	dht       *dht.Server         // the VoidPhone DHT API; nil when off
	dhtKV     *dht.ClientStore    // its way into the cluster
	resp      *resp.Server        // the Redis protocol front door; nil when off
	respKV    *resp.ClientCluster // its way into the cluster

	ring    atomic.Pointer[currentRing]
	ringMu  sync.Mutex // serialises applyRing (watch and ping both call it); guards ringRev
	ringRev int64      // etcd mod revision of the ring last applied
	core    *core      // the chain protocol and its shell
	reports *reporter  // ready and synced keys for the ECS
	peers   *peerSet
	// forwards holds a slot per request being forwarded (max-forwards).
	forwards chan struct{}
	limiter  *byteLimiter
	health   *health.Server
	auth     *auth.Authenticator // users and token key, kept by watchAuthLoop
	rates    *userRates          // per-user request rates; nil = no limit
	removed  removedSet          // removed users' namespaces, kept by watchAuthLoop; their keys are swept
	// dialCreds are the transport credentials for dialing peers.
	dialCreds grpc.DialOption
	stopped   atomic.Bool
	// started is when Start ran; the incarnation is its UnixNano (the member
	// record and the incarnation's health service both carry it).
	started time.Time
	stopc   chan struct{} // closed when Stop begins: ends peers' idle Replicate streams

	ctx     context.Context // server lifetime; cancelled by Stop
	cancel  context.CancelFunc
	goMu    sync.RWMutex // goAttach's check of stopc and wg.Add (read) vs Stop closing stopc (write)
	wg      sync.WaitGroup
	readyCh chan struct{}
	readyMu sync.Once
	stopMu  sync.Once
	fatal   chan error // capacity 1: why the server must stop (another live process has its id)
	copy    copyProgress
}

// copyProgress counts what learner catch-ups received, for the membership
// record (rebalancing progress in ecs status and the admin commands).
type copyProgress struct {
	keys, bytes atomic.Uint64 // since start
	inProgress  atomic.Uint64 // bytes of copies not yet finished
}

// currentRing is the ring the server routes by, with its encoded form for
// GetRing and the server's position in it.
type currentRing struct {
	*ringmeta.Ring
	raw []byte
}

// New validates cfg and builds a server; Start opens storage and listens.
func New(cfg config.KVServer, lg *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listen
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, lg: lg, ctx: ctx, cancel: cancel, readyCh: make(chan struct{}), stopc: make(chan struct{}), fatal: make(chan error, 1), diskEvery: diskEvery}, nil
}

// Start opens the store, listens, registers in etcd and follows the ring.
// On error everything it started is undone.
func (s *Server) Start() (err error) {
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	s.started = time.Now()
	s.core = newCore(s)
	s.watch = newWatchHub()
	s.metrics = newMetrics(s)
	if s.fs == nil && os.Getenv(storage.LoseUnsyncedEnv) == "1" {
		// Test only: a kill -9 then loses what a power cut would.
		if s.fs, err = storage.OpenLoseUnsynced(s.cfg.DataDir, s.lg); err != nil {
			return err
		}
	}
	s.store, err = storage.Open(s.cfg.DataDir, storage.Options{
		FS: s.fs, Sync: s.cfg.Sync, CacheEntries: s.cfg.CacheEntries, CacheBytes: s.cfg.CacheBytes, Logger: s.lg,
		WholeLog: !s.cfg.LeanLog, RawWALSync: s.cfg.RawWALSync,
		OnSync: func(d time.Duration) { s.metrics.walSync.Observe(d.Seconds()) },
	})
	if err != nil {
		return fmt.Errorf("kvserver: open storage %s: %w", s.cfg.DataDir, err)
	}
	if s.lis, err = s.listen(); err != nil {
		return err
	}
	s.peers, s.reports = newPeerSet(s), newReporter(s)
	s.forwards = make(chan struct{}, max(s.cfg.MaxForwards, 1))
	if err = s.core.recover(); err != nil {
		return err
	}
	s.auth, s.rates = newAuthenticator(), newUserRates(s.cfg.RateLimit, s.cfg.RateBurst)
	s.limiter = newByteLimiter(s.cfg.TransferRate)
	if err = s.startMetrics(); err != nil {
		return err
	}
	if s.grpc, err = s.newGRPCServer(); err != nil {
		return err
	}
	kvpb.RegisterKVServer(s.grpc, &kvService{s: s})
	kvpb.RegisterReplicationServer(s.grpc, &replService{s: s})
	kvpb.RegisterAdminServer(s.grpc, &adminService{s: s})
	s.health = health.NewServer()
	s.health.SetServingStatus(etcdkeys.HealthService(s.incarnation()), healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if s.cfg.Reflection {
		// Its calls pass the same guards as any: TLS, the connection gate.
		reflection.Register(s.grpc)
	}
	s.goAttach(s.mux.run)
	s.goAttach(func() {
		// Once Stop has begun, the mux may close before gRPC stops (a
		// connection accepted then is refused, and the mux ends): Serve's
		// error is then the stop's, not a fault.
		if err := s.grpc.Serve(s.mux); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !s.stopped.Load() {
			s.lg.Error("grpc serve", zap.Error(err))
		}
	})
	if err = s.startDHT(); err != nil {
		return err
	}
	if err = s.startRESP(); err != nil {
		return err
	}
	etcdTLS, err := tlsutil.EtcdConfig(s.cfg.EtcdFiles(s.cfg.ID), s.cfg.EtcdEndpoints)
	if err != nil {
		return fmt.Errorf("kvserver: etcd TLS: %w", err)
	}
	s.etcd, err = clientv3.New(clientv3.Config{
		Endpoints: s.cfg.EtcdEndpoints, DialTimeout: 5 * time.Second, TLS: etcdTLS,
		Logger: s.lg.Named("etcd").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return fmt.Errorf("kvserver: etcd %v: %w", s.cfg.EtcdEndpoints, err)
	}
	if err = s.checkUnique(); err != nil {
		return err
	}
	s.goAttach(s.registerLoop)
	s.goAttach(s.watchRingLoop)
	s.goAttach(s.watchAuthLoop)
	s.goAttach(s.sweepLoop)
	s.goAttach(s.core.syncLoop)
	s.goAttach(s.core.loop)
	s.goAttach(s.core.tickLoop)
	s.goAttach(s.reports.loop)
	s.goAttach(s.etcdPingLoop)
	return nil
}

func (s *Server) startMetrics() error {
	if s.cfg.Metrics == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.cfg.Metrics)
	if err != nil {
		return fmt.Errorf("kvserver: metrics listen %s: %w", s.cfg.Metrics, err)
	}
	s.httpSrv = &http.Server{Handler: s.metrics.handler(s.cfg.Pprof), ReadHeaderTimeout: 5 * time.Second}
	s.goAttach(func() { _ = s.httpSrv.Serve(lis) })
	return nil
}

// Fatal receives the reason the server cannot go on (its id is held by
// another live process); the caller stops it and exits.
func (s *Server) Fatal() <-chan error { return s.fatal }

// ReadyNotify is closed once the server serves the first ring that has it.
func (s *Server) ReadyNotify() <-chan struct{} { return s.readyCh }

// incarnation tells this start of the server from every other one.
func (s *Server) incarnation() uint64 { return uint64(s.started.UnixNano()) }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Stop stops serving, leaves the cluster (revoking its lease so the ECS sees
// it go at once), and closes the store. It is idempotent.
func (s *Server) Stop() {
	s.stopMu.Do(func() {
		s.stopped.Store(true)
		s.goMu.Lock()
		close(s.stopc) // goAttach refuses from here on, so no wg.Add races wg.Wait below
		s.goMu.Unlock()
		s.failWrites() // no ack gets in any more: answer them now
		s.stopDHT()
		s.stopRESP()
		if s.health != nil {
			s.health.Shutdown()
		}
		if s.grpc != nil {
			// Long-lived replication streams never end by themselves: give
			// unary calls a moment, then close the rest.
			stopGracefully(s.grpc, time.Second)
		}
		if s.mux != nil {
			_ = s.mux.Close() // when Start failed before gRPC served it
		}
		s.replIn.closeAll()
		if s.httpSrv != nil {
			_ = s.httpSrv.Close()
		}
		s.cancel()
		s.wg.Wait()
		if s.peers != nil {
			s.peers.closeAll()
		}
		if s.etcd != nil {
			_ = s.etcd.Close()
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				s.lg.Warn("close storage", zap.Error(err))
			}
		}
	})
}

func stopGracefully(g *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		g.Stop()
		<-done // Stop ends what GracefulStop waits for; no goroutine outlives Stop
	}
}

// goAttach runs f in a goroutine that Stop waits for and reports whether it
// did. Every goroutine of the server starts here, but for those that their
// starter joins itself (a batch stream's writes). Once Stop has begun it
// refuses (f does not run), so Stop's wg.Wait cannot race a wg.Add (etcd's
// GoAttach); a caller that waits for f must handle false.
func (s *Server) goAttach(f func()) bool {
	s.goMu.RLock()
	defer s.goMu.RUnlock()
	select {
	case <-s.stopc:
		return false
	default:
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// afterFunc runs f through goAttach once d has passed: a timer that fires
// after Stop began does nothing.
func (s *Server) afterFunc(d time.Duration, f func()) {
	time.AfterFunc(d, func() { s.goAttach(f) })
}

// sleepCtx waits d or until the server stops; false means stopping.
func (s *Server) sleepCtx(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }
