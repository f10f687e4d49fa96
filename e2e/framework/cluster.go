package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
)

// Defaults of a test cluster: small and quick to start.
const (
	defaultServers      = 3
	defaultReplicas     = 1
	defaultPartitions   = 64
	defaultSpareSlots   = 4 // ports kept for hand-started servers
	defaultReadyTimeout = 60 * time.Second
	// serversGoneTimeout bounds the wait for kvservers to exit after their ECS did.
	serversGoneTimeout = 10 * time.Second
)

type clusterConfig struct {
	servers, replicas, partitions, spare int
	readyTimeout, stopTimeout            time.Duration
	args, env                            []string
	secure                               bool
}

// Option configures NewCluster.
type Option func(*clusterConfig)

// WithServers sets how many kvservers `ecs start -n` launches (default 3).
func WithServers(n int) Option { return func(c *clusterConfig) { c.servers = n } }

// WithReplicas sets R, passed as --replicas (default 1).
func WithReplicas(r int) Option { return func(c *clusterConfig) { c.replicas = r } }

// WithPartitions sets P, passed as --partitions (default 64).
func WithPartitions(p int) Option { return func(c *clusterConfig) { c.partitions = p } }

// WithArgs appends flags to `ecs start` (after the framework's own, so a
// repeated flag such as --log-level overrides them).
func WithArgs(args ...string) Option {
	return func(c *clusterConfig) { c.args = append(c.args, args...) }
}

// WithEnv adds KEY=VALUE variables to the environment of `ecs start`, which
// the kvservers it launches inherit (e.g. "ECSKV_MAX_CONNECTIONS=50").
func WithEnv(kv ...string) Option {
	return func(c *clusterConfig) { c.env = append(c.env, kv...) }
}

// WithSecure starts the cluster with `ecs start --secure` (TLS everywhere,
// authentication); the framework's admin commands and clients then use the
// certificates it creates in CertsDir.
func WithSecure() Option {
	return func(c *clusterConfig) { c.secure, c.args = true, append(c.args, "--secure") }
}

// WithReadyTimeout bounds the wait for "cluster ready" (default 60s).
func WithReadyTimeout(d time.Duration) Option { return func(c *clusterConfig) { c.readyTimeout = d } }

// WithStopTimeout bounds a graceful stop of the ECS (default 30s).
func WithStopTimeout(d time.Duration) Option { return func(c *clusterConfig) { c.stopTimeout = d } }

// Cluster is an `ecs start` cluster running as real processes.
type Cluster struct {
	cfg     clusterConfig
	binDir  string
	dataDir string
	ports   Ports

	mu   sync.Mutex     // guards the fields below
	ecs  *Process       // the latest `ecs start`; nil before the first Start
	pids map[int]string // kvserver pids launched by the ECS -> id (or "?")
	hand map[string]int // hand-started server id -> port slot
	own  map[int]bool   // pids of hand-started servers (not the ECS's)
	// restarted holds the servers the test restarted by hand (RestartServer).
	restarted map[string]*Process
}

// NewCluster starts a cluster on fresh ports and a fresh data dir and waits
// until it prints "cluster ready". t.Cleanup stops it.
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := clusterConfig{
		servers: defaultServers, replicas: defaultReplicas, partitions: defaultPartitions,
		spare: defaultSpareSlots, readyTimeout: defaultReadyTimeout, stopTimeout: DefaultStopTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	// $ECSKV_E2E_LOG_LEVEL (debug, info, ...) turns up the logs of every
	// cluster of a run, for diagnosing a failure.
	if lvl := os.Getenv("ECSKV_E2E_LOG_LEVEL"); lvl != "" {
		cfg.args = append(cfg.args, "--log-level", lvl)
	}
	c := &Cluster{
		cfg:     cfg,
		binDir:  BinDir(t),
		dataDir: TempDir(t, "data"),
		ports:   PickPorts(t, cfg.servers+cfg.spare),
		pids:    map[int]string{},
		hand:    map[string]int{},
		own:     map[int]bool{},

		restarted: map[string]*Process{},
	}
	t.Cleanup(c.killLeftovers(t))
	c.Start(t)
	return c
}

// Bin returns the path of one of the binaries.
func (c *Cluster) Bin(name string) string { return filepath.Join(c.binDir, name) }

// DataDir returns the cluster's --data-dir.
func (c *Cluster) DataDir() string { return c.dataDir }

// ServerDir returns the pebble directory of server id.
func (c *Cluster) ServerDir(id string) string { return filepath.Join(c.dataDir, id) }

// Secure reports whether the cluster runs with --secure.
func (c *Cluster) Secure() bool { return c.cfg.secure }

// CertsDir returns where `ecs start --secure` keeps the cluster's certificates.
func (c *Cluster) CertsDir() string { return filepath.Join(c.dataDir, "certs") }

// AdminTLS returns the certificate flags of admin commands: none for a
// plaintext cluster.
func (c *Cluster) AdminTLS() []string {
	if !c.cfg.secure {
		return nil
	}
	return []string{"--certs-dir", c.CertsDir()}
}

// Ports returns the cluster's port block.
func (c *Cluster) Ports() Ports { return c.ports }

// EtcdEndpoint returns the embedded etcd's client endpoint, host:port.
func (c *Cluster) EtcdEndpoint() string { return Addr(c.ports.Etcd) }

// Servers returns the number of servers `ecs start` launches.
func (c *Cluster) Servers() int { return c.cfg.servers }

// ServerIDs returns the ids of the launched servers, s1..sN.
func (c *Cluster) ServerIDs() []string {
	ids := make([]string, c.cfg.servers)
	for i := range ids {
		ids[i] = "s" + strconv.Itoa(i+1)
	}
	return ids
}

// ServerAddr returns the service address of a server launched by the ECS
// (s1..sN, and sN+1.. of `ecs add` within the reserved slots) or of a
// hand-started one; "" for an unknown id.
func (c *Cluster) ServerAddr(id string) string {
	if slot := c.slot(id); slot > 0 {
		return Addr(c.ports.Server(slot))
	}
	return ""
}

// MetricsAddr returns the metrics address of a server, like ServerAddr.
func (c *Cluster) MetricsAddr(id string) string {
	if slot := c.slot(id); slot > 0 {
		return Addr(c.ports.Metrics(slot))
	}
	return ""
}

func (c *Cluster) slot(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.hand[id]; ok {
		return s
	}
	if n, err := strconv.Atoi(id[min(1, len(id)):]); err == nil && len(id) > 1 && id[0] == 's' && n >= 1 && n <= c.ports.Slots {
		return n
	}
	return 0
}

// ECS returns the latest `ecs start` process (nil before the first Start).
func (c *Cluster) ECS() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ecs
}

// StartArgs returns the `ecs start` arguments of this cluster for another
// data dir and port block (tests of refused starts use them).
func (c *Cluster) StartArgs(dataDir string, ports Ports) []string {
	args := []string{"start",
		"-n", strconv.Itoa(c.cfg.servers),
		"--data-dir", dataDir,
		"--base-port", strconv.Itoa(ports.Base),
		"--etcd-port", strconv.Itoa(ports.Etcd),
		"--http", Addr(ports.HTTP),
		"--replicas", strconv.Itoa(c.cfg.replicas),
		"--partitions", strconv.Itoa(c.cfg.partitions),
		"--log-level", "warn",
	}
	return append(args, c.cfg.args...)
}

// Start runs `ecs start` on the cluster's data dir and ports and waits for
// "cluster ready". The previous ECS, if any, must have exited.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if p := c.ECS(); p != nil && p.Running() {
		t.Fatalf("framework: Start: ecs (pid %d) is still running", p.PID())
	}
	began := time.Now()
	p := StartProcess(t, ProcessSpec{Name: "ecs", Path: c.Bin(ECSBin), Args: c.StartArgs(c.dataDir, c.ports), Env: c.cfg.env})
	c.mu.Lock()
	c.ecs = p
	c.mu.Unlock()
	if _, err := p.WaitForStdout(c.cfg.readyTimeout, "cluster ready"); err != nil {
		p.Kill(t)
		c.killServers(t)
		t.Fatalf("framework: cluster not ready: %v", err)
	}
	c.trackServers(t)
	t.Logf("framework: cluster ready in %v: %d servers, ecs pid %d, %s, data %s",
		time.Since(began).Round(time.Millisecond), c.cfg.servers, p.PID(), c.ports, c.dataDir)
}

// Stop sends SIGTERM to the ECS and waits for it to exit with status 0 and
// for every kvserver it launched to be gone; either failing fails the test
// (a lingering kvserver is then killed).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	p := c.ECS()
	if p == nil {
		t.Fatalf("framework: Stop: cluster never started")
	}
	c.trackServers(t)
	if code := p.Stop(t, c.cfg.stopTimeout); code != 0 {
		t.Errorf("framework: ecs exited with status %d after SIGTERM, want 0; stderr:\n%s", code, tail(p.Stderr(), 20))
	}
	c.WaitServersGone(t, serversGoneTimeout)
}

// Kill simulates a crash of the whole machine: SIGKILL to the ECS's process
// group, and to any kvserver it launched outside that group.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	p := c.ECS()
	if p == nil {
		t.Fatalf("framework: Kill: cluster never started")
	}
	c.trackServers(t)
	p.Kill(t)
	c.killServers(t)
}

// killServers SIGKILLs every tracked kvserver still alive and waits for them.
func (c *Cluster) killServers(t testing.TB) {
	t.Helper()
	for pid, id := range c.trackedPIDs() {
		if killIfKVServer(pid) {
			t.Logf("framework: kvserver %s (pid %d) outlived its ECS's process group; sent SIGKILL", id, pid)
		}
	}
	c.waitGone(t, killTimeout)
}

// WaitServersGone waits up to timeout for every kvserver the ECS launched to
// exit. Survivors fail the test and are killed.
func (c *Cluster) WaitServersGone(t testing.TB, timeout time.Duration) {
	t.Helper()
	if alive := c.waitGone(t, timeout); len(alive) > 0 {
		t.Errorf("framework: kvservers %v still alive %v after their ECS exited; killing them", alive, timeout)
		c.killServers(t)
	}
}

// waitGone waits for every thread of the tracked kvservers to exit (so
// their ports are free again) and forgets those that did; it returns the
// survivors as "id(pid)".
func (c *Cluster) waitGone(t testing.TB, timeout time.Duration) []string {
	var alive []string
	testutil.WaitUntil(timeout, 50*time.Millisecond, func() bool {
		alive = alive[:0]
		for pid, id := range c.trackedPIDs() {
			if exited, _ := Exited(pid); !exited {
				alive = append(alive, fmt.Sprintf("%s(pid %d)", id, pid))
			}
		}
		return len(alive) == 0
	})
	if len(alive) == 0 {
		c.mu.Lock()
		clear(c.pids)
		c.mu.Unlock()
	}
	slices.Sort(alive)
	return alive
}

// ServerPIDs returns the kvserver pids launched by the ECS, as far as the
// framework knows them (children of the ECS and pids in `ecs status`).
func (c *Cluster) ServerPIDs() map[int]string { return c.trackedPIDs() }

func (c *Cluster) trackedPIDs() map[int]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]string, len(c.pids))
	for pid, id := range c.pids {
		out[pid] = id
	}
	return out
}

// Track records the kvservers the ECS runs now (after `ecs add`, say), so
// that the cluster's cleanup kills any of them that outlive their ECS.
func (c *Cluster) Track(t testing.TB) { c.trackServers(t) }

// trackServers records the kvservers the ECS runs: its children, and the pids
// `ecs status` reports.
func (c *Cluster) trackServers(t testing.TB) {
	p := c.ECS()
	if p == nil || !p.Running() {
		return
	}
	for _, ch := range Children(p.PID()) {
		c.track(ch.PID, idFromCmdline(ch.Cmdline))
	}
	st, err := c.StatusE(t)
	if err != nil {
		t.Logf("framework: ecs status: %v", err)
		return
	}
	for _, s := range st.Servers {
		c.track(s.PID, s.ID)
	}
}

func (c *Cluster) track(pid int, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pid <= 0 || c.own[pid] {
		return
	}
	if old, ok := c.pids[pid]; !ok || old == "?" {
		c.pids[pid] = id
	}
}

// idFromCmdline finds the value of --id in a kvserver command line.
func idFromCmdline(cmdline string) string {
	var prev string
	for _, f := range splitFields(cmdline) {
		if prev == "--id" {
			return f
		}
		if len(f) > 5 && f[:5] == "--id=" {
			return f[5:]
		}
		prev = f
	}
	return "?"
}

// killLeftovers returns the cluster's last cleanup: kill kvservers that
// survived everything else.
func (c *Cluster) killLeftovers(t testing.TB) func() {
	return func() {
		for pid, id := range c.trackedPIDs() {
			if killIfKVServer(pid) {
				t.Logf("framework: cleanup killed leftover kvserver %s (pid %d)", id, pid)
			}
		}
	}
}

// ClientConfig is the library configuration for this cluster: the ring
// from its etcd, or on a secure cluster (whose etcd admits only members)
// from s1 with the client certificate.
func (c *Cluster) ClientConfig() config.Client {
	cfg := config.DefaultClient()
	cfg.EtcdEndpoints = []string{c.EtcdEndpoint()}
	if c.cfg.secure {
		cfg.Servers, cfg.CertsDir = []string{c.ServerAddr("s1")}, c.CertsDir()
	}
	return cfg
}

// Client returns a library client of the cluster, closed by t.Cleanup.
func (c *Cluster) Client(t testing.TB) *kvclient.Client {
	t.Helper()
	cfg := c.ClientConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := kvclient.New(ctx, cfg)
	if err != nil {
		t.Fatalf("framework: kvclient.New(%s): %v", c.EtcdEndpoint(), err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// StartKVServer starts a kvserver by hand on the next spare port slot, with
// its data in ServerDir(id), registering through the cluster's etcd. args
// are appended to its command line (e.g. "--log-level", "info").
func (c *Cluster) StartKVServer(t testing.TB, id string, args ...string) *Process {
	t.Helper()
	c.mu.Lock()
	slot, ok := c.hand[id]
	if !ok {
		slot = c.cfg.servers + len(c.hand) + 1
		if slot > c.ports.Slots {
			c.mu.Unlock()
			t.Fatalf("framework: no spare port slot for %s (%d reserved)", id, c.cfg.spare)
		}
		c.hand[id] = slot
	}
	c.mu.Unlock()
	p := StartProcess(t, ProcessSpec{Name: id, Path: c.Bin(KVServerBin), Args: append([]string{
		"--id", id,
		"--listen", Addr(c.ports.Server(slot)),
		"--metrics", Addr(c.ports.Metrics(slot)),
		"--data-dir", c.ServerDir(id),
		"--etcd-endpoints", c.EtcdEndpoint(),
	}, args...)})
	c.mu.Lock()
	c.own[p.PID()] = true
	c.mu.Unlock()
	return p
}

// ServerPID returns the pid of the live kvserver with this id: one the test
// restarted, else a child of the ECS; 0 when there is none.
func (c *Cluster) ServerPID(id string) int {
	c.mu.Lock()
	p := c.restarted[id]
	c.mu.Unlock()
	if p != nil {
		if p.Running() {
			return p.PID()
		}
		return 0
	}
	if e := c.ECS(); e != nil {
		for _, ch := range Children(e.PID()) {
			if strings.Contains(ch.Cmdline, KVServerBin) && idFromCmdline(ch.Cmdline) == id {
				return ch.PID
			}
		}
	}
	return 0
}

// KillServer simulates a crash of one kvserver: SIGKILL, then waits until
// the process is gone. It returns the server's exact command line (argv,
// from /proc, read before the kill) for RestartServer.
func (c *Cluster) KillServer(t testing.TB, id string) []string {
	t.Helper()
	pid := c.ServerPID(id)
	if pid == 0 {
		t.Fatalf("framework: KillServer: no live kvserver %s", id)
	}
	argv, ok := ProcArgs(pid)
	if !ok {
		t.Fatalf("framework: KillServer: read the command line of %s (pid %d)", id, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("framework: kill -9 %s (pid %d): %v", id, pid, err)
	}
	c.mu.Lock()
	p := c.restarted[id]
	c.mu.Unlock()
	if p != nil && p.PID() == pid {
		p.Wait(killTimeout)
	}
	// Wait for every thread, not only the main one: a thread in an
	// uninterruptible sleep keeps the process's sockets open (and so its
	// connections to etcd and its peers) until it returns to user space.
	began := time.Now()
	var states []string
	if !testutil.WaitUntil(killTimeout, 2*time.Millisecond, func() bool {
		var exited bool
		exited, states = Exited(pid)
		return exited
	}) {
		t.Fatalf("framework: %s (pid %d) still running %v after SIGKILL; threads %v", id, pid, killTimeout, states)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Logf("framework: %s (pid %d) took %v to exit after SIGKILL", id, pid, took.Round(time.Millisecond))
	}
	return argv
}

// RestartServer starts a kvserver again with the command line KillServer
// returned (same id, ports, data dir and flags), as a Process of the test,
// with env (KEY=VALUE) added to its environment.
func (c *Cluster) RestartServer(t testing.TB, id string, argv []string, env ...string) *Process {
	t.Helper()
	if len(argv) == 0 {
		t.Fatalf("framework: RestartServer %s: empty command line", id)
	}
	p := StartProcess(t, ProcessSpec{Name: id, Path: argv[0], Args: argv[1:], Env: env})
	c.mu.Lock()
	c.own[p.PID()] = true
	c.restarted[id] = p
	c.mu.Unlock()
	return p
}
