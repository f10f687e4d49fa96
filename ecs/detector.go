package ecs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// The failure detector (DESIGN §5) probes every registered server's gRPC
// health on its client address. One goroutine per server probes in a loop
// and reports verdict changes to the controller, which decides what they
// mean; lease expiry (the membership watch) is the other, slower signal.
//
// A probe asks for the health service of the incarnation in the server's
// member record (etcdkeys.HealthService), not for the server-wide "": what
// answers on an address is not always the incarnation registered for it. A
// restarted server listens before it registers its new incarnation, and
// any process may take the port of a dead one. Their answers must not keep
// (or bring back) a dead incarnation in the chains.

// errNotServing is a health answer other than SERVING.
var errNotServing = errors.New("ecs: server not serving")

// errOtherProcess is an answer from a process that is not the probed
// incarnation: it does not know the incarnation's health service, or serves
// no health service at all. The incarnation is gone as surely as when the
// connection is refused.
var errOtherProcess = errors.New("ecs: another process answers on the server's address")

// healthEvent is a change of verdict for one incarnation of a server.
type healthEvent struct {
	id          string
	incarnation uint64
	up          bool
	at          time.Time // when the verdict was reached
}

// healthChecker probes one server; the controller's tests swap it for a fake.
type healthChecker interface {
	check(ctx context.Context) error
	close()
}

// dialFunc makes a checker for one incarnation of a server at addr.
type dialFunc func(addr string, incarnation uint64) (healthChecker, error)

// probeTarget is one incarnation of a server to probe.
type probeTarget struct {
	id, addr    string
	incarnation uint64
}

// detector runs the probe loops. sync and stop are called only by the
// controller goroutine, which owns loops; the loops only send on out.
type detector struct {
	lg       *zap.Logger
	interval time.Duration
	timeout  time.Duration
	failures int
	silence  time.Duration
	dial     dialFunc
	out      chan healthEvent

	loops map[string]probeLoop // by server id
	wg    sync.WaitGroup

	mu      sync.Mutex      // guards failing
	failing map[string]bool // by server id, once it answered: whether its latest probe failed
}

type probeLoop struct {
	t      probeTarget
	cancel context.CancelFunc
}

func newDetector(lg *zap.Logger, interval, timeout time.Duration, failures int, dial dialFunc) *detector {
	if dial == nil {
		dial = dialHealth
	}
	return &detector{
		lg: lg, interval: interval, timeout: timeout, failures: max(failures, 1), silence: silence, dial: dial,
		out: make(chan healthEvent, 64), loops: map[string]probeLoop{}, failing: map[string]bool{},
	}
}

// sync makes the running loops match targets: a loop whose server left or
// changed address or incarnation is stopped, a new one starts fresh.
func (d *detector) sync(ctx context.Context, targets []probeTarget) {
	want := make(map[string]probeTarget, len(targets))
	for _, t := range targets {
		want[t.id] = t
	}
	for id, l := range d.loops {
		if t, ok := want[id]; !ok || t != l.t {
			l.cancel()
			delete(d.loops, id)
			d.mu.Lock()
			delete(d.failing, id)
			d.mu.Unlock()
		}
	}
	for id, t := range want {
		if _, ok := d.loops[id]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		d.loops[id] = probeLoop{t: t, cancel: cancel}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.run(lctx, t)
		}()
	}
}

// isolated reports whether the latest probe of most servers failed: then
// the likelier failure is this ECS's own network (cut from the servers
// while etcd still reaches it), and failing the servers over would strip
// every chain for nothing; their etcd leases still tell which of them are
// really gone. Servers never heard from do not count. Only the controller
// goroutine calls it (it owns loops).
func (d *detector) isolated() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	failing, total := 0, 0
	for id := range d.loops {
		f, ok := d.failing[id]
		if !ok {
			continue
		}
		total++
		if f {
			failing++
		}
	}
	return failing >= 2 && 2*failing > total
}

// stop ends every loop and waits for them.
func (d *detector) stop() {
	for id, l := range d.loops {
		l.cancel()
		delete(d.loops, id)
	}
	d.wg.Wait()
}

// silence is how long a server must have answered nothing before timed-out
// probes alone mark it down. A refused connection or a NOT_SERVING answer
// means the process is gone or going: `failures` of those suffice. A probe
// that times out may only mean the machine is busy (a 2-core box copying
// partitions stalls a server for a few hundred milliseconds), and a false
// failover is expensive: the server's every replica is copied again. A
// crashed process is still caught at once (refused connections, its lease).
const silence = 2 * time.Second

// run probes t until ctx ends. The first success reports the server up;
// after that, `failures` consecutive failures report it down (timeouts only
// after `silence` without an answer) and as many consecutive successes
// report it up again. A loop never reports down before its first success: a
// server that never answered is left to its lease, which also covers a
// server that died while no ECS was leading.
func (d *detector) run(ctx context.Context, t probeTarget) {
	hc, err := d.dial(t.addr, t.incarnation)
	if err != nil {
		d.lg.Warn("cannot probe server", zap.String("id", t.id), zap.String("addr", t.addr), zap.Error(err))
		return
	}
	defer hc.close()
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	known, up := false, false
	oks, fails := 0, 0
	var lastOK time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, d.timeout)
		err := hc.check(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			oks, fails, lastOK = oks+1, 0, time.Now()
		} else {
			oks, fails = 0, fails+1
		}
		if known || err == nil {
			d.mu.Lock()
			d.failing[t.id] = err != nil
			d.mu.Unlock()
		}
		switch {
		case err == nil && (!known || !up && oks >= d.failures):
			known, up = true, true
			d.send(ctx, healthEvent{id: t.id, incarnation: t.incarnation, up: true, at: time.Now()})
		case err != nil && known && up && fails >= d.failures && (isGone(err) || time.Since(lastOK) >= d.silence):
			up = false
			d.lg.Info("server fails health probes", zap.String("id", t.id), zap.Int("failures", fails), zap.Error(err))
			d.send(ctx, healthEvent{id: t.id, incarnation: t.incarnation, up: false, at: time.Now()})
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// isGone tells a server that is not there (connection refused or reset,
// it answered NOT_SERVING, or another process answered) from one that is
// only slow to answer.
func isGone(err error) bool {
	return errors.Is(err, errNotServing) || errors.Is(err, errOtherProcess) || status.Code(err) == codes.Unavailable
}

func (d *detector) send(ctx context.Context, ev healthEvent) {
	select {
	case d.out <- ev:
	case <-ctx.Done():
	}
}

// grpcHealth probes the standard gRPC health service for one incarnation's
// service name.
type grpcHealth struct {
	conn    *grpc.ClientConn
	cli     healthpb.HealthClient
	service string // etcdkeys.HealthService of the probed incarnation
}

// dialHealth creates a lazy plaintext connection.
func dialHealth(addr string, incarnation uint64) (healthChecker, error) {
	return healthDialer(grpc.WithTransportCredentials(insecure.NewCredentials()))(addr, incarnation)
}

// healthDialer creates lazy connections with creds. Reconnect backoff is
// capped at one second so a server that comes back is seen within about a
// second.
func healthDialer(creds grpc.DialOption) dialFunc {
	return func(addr string, incarnation uint64) (healthChecker, error) {
		conn, err := grpc.NewClient(addr, creds,
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			return nil, fmt.Errorf("ecs: probe %s: %w", addr, err)
		}
		return &grpcHealth{conn: conn, cli: healthpb.NewHealthClient(conn), service: etcdkeys.HealthService(incarnation)}, nil
	}
}

func (g *grpcHealth) check(ctx context.Context) error {
	resp, err := g.cli.Check(ctx, &healthpb.HealthCheckRequest{Service: g.service})
	if c := status.Code(err); c == codes.NotFound || c == codes.Unimplemented {
		return fmt.Errorf("%w: %w", errOtherProcess, err)
	}
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%w: %s", errNotServing, resp.GetStatus())
	}
	return nil
}

func (g *grpcHealth) close() { _ = g.conn.Close() }
