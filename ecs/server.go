package ecs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/ecs/launcher"
	"github.com/ecskv/ecskv/ecs/opclient"
	"github.com/ecskv/ecskv/ecs/statuspage"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Server is one ECS process. Create with New, then Start.
type Server struct {
	cfg config.ECS
	lg  *zap.Logger
	out io.Writer // where launched servers' output goes

	lock      *os.File
	etcd      *embed.Etcd
	cli       *clientv3.Client
	endpoints []string
	launcher  *launcher.Launcher
	metrics   *ecsMetrics
	events    *eventLog
	httpSrv   *http.Server
	tls       config.TLS      // certificate settings, --secure's default dir filled in
	limits    ringmeta.Limits // the cluster's key and value limits (the ring's once it exists)
	creds     grpc.DialOption // how the ECS dials servers (probes, digests)

	ctx       context.Context // server lifetime
	cancel    context.CancelFunc
	goMu      sync.RWMutex // goAttach's check of ctx and wg.Add (read) vs Stop cancelling ctx (write)
	wg        sync.WaitGroup
	readyCh   chan struct{}
	readyRing *ringmeta.Ring // set before readyCh closes
	standbyCh chan string    // receives the leader's name when this ECS waits behind it
	stopReqCh chan struct{}
	stopReq   sync.Once
	stopOnce  sync.Once
}

// New validates cfg; child output is copied to out.
func New(cfg config.ECS, lg *zap.Logger, out io.Writer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := newECSMetrics()
	countEvent := func(kind string) { m.events.WithLabelValues(strings.ReplaceAll(kind, " ", "_")).Inc() }
	return &Server{
		cfg: cfg, lg: lg, out: out, metrics: m, events: &eventLog{count: countEvent, announce: announceTo(out)},
		ctx: ctx, cancel: cancel, readyCh: make(chan struct{}), stopReqCh: make(chan struct{}),
		standbyCh: make(chan string, 1),
	}, nil
}

// Start takes the data dir, starts or dials etcd, launches the local
// servers and begins campaigning for leadership. A failed Start undoes
// everything it did.
func (s *Server) Start() (err error) {
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	embedded := len(s.cfg.EtcdEndpoints) == 0
	if embedded || s.cfg.Servers > 0 {
		if s.lock, err = lockDataDir(s.cfg.DataDir); err != nil {
			return err
		}
	}
	if err = launcher.CheckPortsFree(s.cfg.Host, s.neededPorts(embedded)); err != nil {
		return err
	}
	if err = s.setupTLS(); err != nil {
		return err
	}
	if err = s.startHTTP(); err != nil {
		return err
	}
	s.endpoints = s.cfg.EtcdEndpoints
	if embedded {
		if s.etcd, err = startEmbeddedEtcd(s.cfg.DataDir, s.cfg.Host, s.cfg.EtcdPort, s.tls.Files(tlsutil.ECSName), s.lg); err != nil {
			return err
		}
		s.endpoints = []string{net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.EtcdPort))}
	}
	if s.cli, err = dialEtcd(s.ctx, s.endpoints, s.tls.EtcdFiles(tlsutil.ECSName), s.lg); err != nil {
		return err
	}
	if err = s.checkCluster(s.ctx); err != nil {
		return err
	}
	if err = s.checkIDsFree(s.ctx); err != nil {
		return err
	}
	if s.launcher, err = launcher.New(s.cfg, s.tls, s.limits.MessageBytes(), s.lg, s.out); err != nil {
		return err
	}
	if err = s.launcher.Start(s.endpoints); err != nil {
		return err
	}
	s.goAttach(s.watchStopLoop)
	s.goAttach(s.leadLoop)
	return nil
}

// neededPorts lists every port this start will bind, with what it is for.
func (s *Server) neededPorts(embedded bool) map[int]string {
	ports := map[int]string{}
	if embedded {
		ports[s.cfg.EtcdPort] = "etcd client"
		ports[s.cfg.EtcdPort+1] = "etcd peer"
	}
	for i := 1; i <= s.cfg.Servers; i++ {
		g, m := launcher.ServerPorts(s.cfg, i)
		ports[g] = "kvserver s" + strconv.Itoa(i)
		ports[m] = "kvserver s" + strconv.Itoa(i) + " metrics"
	}
	return ports
}

// ReadyNotify is closed when every launched server serves the published ring.
func (s *Server) ReadyNotify() <-chan struct{} { return s.readyCh }

// ReadyRing is the ring at the moment the cluster became ready.
func (s *Server) ReadyRing() *ringmeta.Ring { return s.readyRing }

// StandbyNotify receives the current leader's description each time this
// ECS starts waiting behind another leader (a standby, DESIGN §5).
func (s *Server) StandbyNotify() <-chan string { return s.standbyCh }

// StopRequested is closed when `ecs stop` asks this cluster to stop.
func (s *Server) StopRequested() <-chan struct{} { return s.stopReqCh }

// ChildExited reports the id of every launched server that exits.
func (s *Server) ChildExited() <-chan string { return s.launcher.Exited() }

// EtcdEndpoints returns the etcd endpoints the cluster uses.
func (s *Server) EtcdEndpoints() []string { return s.endpoints }

// Stop closes the status page, stops leading (without publishing the
// servers' departure), stops the launched servers, then etcd. It is
// idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.goMu.Lock()
		s.cancel() // goAttach refuses from here on, so no wg.Add races wg.Wait below
		s.goMu.Unlock()
		if s.httpSrv != nil {
			_ = s.httpSrv.Close() // ends its Serve goroutine, which wg.Wait joins
		}
		s.wg.Wait()
		if s.launcher != nil {
			s.launcher.Stop(10 * time.Second)
		}
		if s.cli != nil {
			_ = s.cli.Close()
		}
		if s.etcd != nil {
			s.etcd.Close()
		}
		if s.lock != nil {
			_ = s.lock.Close()
		}
	})
}

// goAttach runs f in a goroutine that Stop waits for and reports whether it
// did. Once Stop has begun it refuses (f does not run), so Stop's wg.Wait
// cannot race a wg.Add (etcd's GoAttach).
func (s *Server) goAttach(f func()) bool {
	s.goMu.RLock()
	defer s.goMu.RUnlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// leaderValue describes this ECS in its leader key: host, pid, status
// page and, when it holds one, the data dir (sameDataDir reads it).
func (s *Server) leaderValue() string {
	host, _ := os.Hostname()
	v := fmt.Sprintf("%s pid %d http %s", host, os.Getpid(), s.cfg.HTTP)
	if s.lock != nil {
		if dir, err := filepath.Abs(s.cfg.DataDir); err == nil {
			v += " data " + dir
		}
	}
	return v
}

// sameDataDir reports whether two leader values name the same host and
// data dir.
func sameDataDir(a, b string) bool {
	host := func(v string) string { h, _, _ := strings.Cut(v, " "); return h }
	_, da, okA := strings.Cut(a, " data ")
	_, db, okB := strings.Cut(b, " data ")
	return okA && okB && da == db && host(a) == host(b)
}

// leadLoop campaigns for leadership and runs the controller while leader;
// a lost session (etcd partition, expiry) means campaigning again.
func (s *Server) leadLoop() {
	for s.ctx.Err() == nil {
		if err := s.leadOnce(); err != nil && s.ctx.Err() == nil {
			s.lg.Warn("leadership ended", zap.Error(err))
			select {
			case <-time.After(time.Second):
			case <-s.ctx.Done():
			}
		}
	}
}

func (s *Server) leadOnce() error {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(5), concurrency.WithContext(s.ctx))
	if err != nil {
		return fmt.Errorf("ecs: session: %w", err)
	}
	// Session.Close revokes with the session's (by then cancelled) context,
	// which would leave the leader key for a restarted ECS to wait out: revoke
	// with a context of its own.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = s.cli.Revoke(ctx, sess.Lease())
		sess.Orphan()
	}()
	el := concurrency.NewElection(sess, etcdkeys.LeaderPrefix(s.cfg.Cluster))
	me := s.leaderValue()
	if lr, err := el.Leader(s.ctx); err == nil && len(lr.Kvs) > 0 {
		kv := lr.Kvs[0]
		if s.lock != nil && sameDataDir(string(kv.Value), me) {
			// The leader ran on our data dir, whose lock we hold: it is dead.
			// Its session would keep the key until its lease runs out; the
			// ring's writes are fenced by the leader key, so revoking is safe
			// even were this judgement wrong.
			s.lg.Info("previous leader on this data dir is gone; revoking its session", zap.String("leader", string(kv.Value)))
			_, _ = s.cli.Revoke(s.ctx, clientv3.LeaseID(kv.Lease))
		} else {
			select {
			case s.standbyCh <- string(kv.Value):
			default:
			}
		}
	}
	if err := el.Campaign(s.ctx, me); err != nil {
		return fmt.Errorf("ecs: campaign: %w", err)
	}
	s.lg.Info("elected leader")
	s.metrics.leader.Set(1)
	defer s.metrics.leader.Set(0)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.goAttach(func() { // refused only when s.ctx, and so ctx, is done
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	})
	rs := newRingStore(s.cli, s.cfg.Cluster)
	rs.leaderKey, rs.leaderRev = el.Key(), el.Rev()
	c := &controller{
		cfg: s.cfg, lg: s.lg, cli: s.cli, rings: rs, expect: s.launcher.IDs(),
		events: s.events, gauges: s.metrics, onReady: s.markReady, procs: s.launcher,
		dial: healthDialer(s.creds), adminDial: opclient.AdminDialerWith(s.creds),
	}
	err = c.run(ctx)
	if errors.Is(s.ctx.Err(), context.Canceled) {
		return nil
	}
	if err == nil {
		err = errors.New("ecs: leadership session lost")
	}
	return err
}

func (s *Server) markReady(r *ringmeta.Ring) {
	select {
	case <-s.readyCh:
	default:
		s.readyRing = r
		close(s.readyCh)
	}
}

// watchStopLoop turns a write of the stop key (`ecs stop`) into
// StopRequested. Only writes after this ECS started count.
func (s *Server) watchStopLoop() {
	for wr := range s.cli.Watch(s.ctx, etcdkeys.Stop(s.cfg.Cluster)) {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				s.lg.Info("stop requested")
				s.stopReq.Do(func() { close(s.stopReqCh) })
			}
		}
	}
}

// startHTTP serves /metrics, /status (JSON) and the status page.
func (s *Server) startHTTP() error {
	if s.cfg.HTTP == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("%w: status page %s: %v", ErrPortInUse, s.cfg.HTTP, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	statuspage.Register(mux, s.status, s.lg)
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.goAttach(func() { _ = s.httpSrv.Serve(lis) })
	return nil
}

func (s *Server) status(ctx context.Context) (*opclient.Status, error) {
	if s.cli == nil {
		return nil, opclient.ErrNoCluster
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := opclient.ReadStatus(ctx, s.cli, s.cfg.Cluster)
	if err != nil {
		return nil, err
	}
	st.Events = s.events.list()
	return st, nil
}
