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

// Node names of a ChaosCluster, as its Network knows them.
const (
	EtcdNode   = "etcd"
	ClientNode = "client" // this test process: the workload's clients
)

// ChaosConfig shapes a ChaosCluster.
type ChaosConfig struct {
	Servers, Replicas, Partitions int
	ECSes                         int // controllers: the first leads, the others stand by
	// ServerArgs are extra kvserver flags by server id (a zone, coordinates).
	ServerArgs map[string][]string
	// Late lists servers NewChaosCluster does not start: the test starts
	// them with StartServer, to join after the first layout.
	Late []string
}

// ChaosCluster is a cluster built for fault injection: an etcd process the
// harness owns, ECS controllers started with `ecs start -n 0` on it (one
// leader, the others standing by), and kvservers started by hand. Every
// process reaches every other through a proxy of the cluster's Network: a
// kvserver advertises its proxy's address (--advertise), so peers, the ECS
// and clients dial through it, and each process has an etcd proxy of its
// own. Network.Set then cuts any node from any other.
type ChaosCluster struct {
	cfg     ChaosConfig
	binDir  string
	dataDir string
	ports   Ports
	net     *Network
	etcd    *EtcdProcess

	mu        sync.Mutex // guards the maps
	procs     map[string]*Process
	argv      map[string][]string
	etcdProxy map[string]*Proxy
	srvProxy  map[string]*Proxy
}

// NewChaosCluster starts etcd, the ECSes and the servers but the late ones,
// and waits until the ECS has laid out the first ring.
func NewChaosCluster(t testing.TB, cfg ChaosConfig) *ChaosCluster {
	t.Helper()
	c := &ChaosCluster{
		cfg: cfg, binDir: BinDir(t), dataDir: TempDir(t, "data"), ports: PickPorts(t, cfg.Servers),
		net: NewNetwork(), procs: map[string]*Process{}, argv: map[string][]string{},
		etcdProxy: map[string]*Proxy{}, srvProxy: map[string]*Proxy{},
	}
	c.net.SetPID(os.Getpid(), ClientNode)
	t.Cleanup(func() { c.Close(t) })
	c.etcd = StartEtcd(t, filepath.Join(c.dataDir, "etcd"), c.ports.Etcd, c.ports.Etcd+1)
	for _, id := range c.ServerIDs() {
		c.srvProxy[id] = c.proxy(t, id, "", Addr(c.ports.Server(c.slot(id))))
	}
	c.StartECS(t, "ecs1")
	for _, id := range c.ServerIDs() {
		if !slices.Contains(cfg.Late, id) {
			c.StartServer(t, id)
		}
	}
	if _, err := c.Proc("ecs1").WaitForStdout(60*time.Second, "cluster ready"); err != nil {
		t.Fatalf("framework: %v", err)
	}
	for i := 2; i <= cfg.ECSes; i++ {
		name := "ecs" + strconv.Itoa(i)
		c.StartECS(t, name)
		if _, err := c.Proc(name).WaitForStdout(30*time.Second, "standing by"); err != nil {
			t.Fatalf("framework: %v", err)
		}
	}
	return c
}

func (c *ChaosCluster) proxy(t testing.TB, to, from, target string) *Proxy {
	t.Helper()
	p, err := c.net.Proxy(0, to, from, target)
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	return p
}

// Net returns the network whose faults cut nodes apart.
func (c *ChaosCluster) Net() *Network { return c.net }

// StatusURL is the status page of ecs1 (the first leader).
func (c *ChaosCluster) StatusURL() string { return "http://" + Addr(c.ports.HTTP) + "/" }

// Etcd returns the etcd process.
func (c *ChaosCluster) Etcd() *EtcdProcess { return c.etcd }

// EtcdEndpoint is etcd's own address (not through a proxy).
func (c *ChaosCluster) EtcdEndpoint() string { return c.etcd.Endpoint() }

// ServerIDs returns s1..sN.
func (c *ChaosCluster) ServerIDs() []string {
	ids := make([]string, c.cfg.Servers)
	for i := range ids {
		ids[i] = "s" + strconv.Itoa(i+1)
	}
	return ids
}

// ECSNames returns ecs1..ecsM.
func (c *ChaosCluster) ECSNames() []string {
	names := make([]string, c.cfg.ECSes)
	for i := range names {
		names[i] = "ecs" + strconv.Itoa(i+1)
	}
	return names
}

func (c *ChaosCluster) slot(id string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, "s"))
	return n
}

// Proc returns the latest process of a node (nil if never started).
func (c *ChaosCluster) Proc(name string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name]
}

func (c *ChaosCluster) etcdVia(t testing.TB, name string) string {
	c.mu.Lock()
	p := c.etcdProxy[name]
	c.mu.Unlock()
	if p == nil {
		p = c.proxy(t, EtcdNode, name, c.etcd.Endpoint())
		c.mu.Lock()
		c.etcdProxy[name] = p
		c.mu.Unlock()
	}
	return p.Addr()
}

func (c *ChaosCluster) start(t testing.TB, name string, argv []string) {
	t.Helper()
	p := StartProcess(t, ProcessSpec{Name: name, Path: argv[0], Args: argv[1:]})
	c.net.SetPID(p.PID(), name)
	c.mu.Lock()
	c.procs[name], c.argv[name] = p, argv
	c.mu.Unlock()
}

// StartServer starts kvserver id (again, on its data dir).
func (c *ChaosCluster) StartServer(t testing.TB, id string) {
	t.Helper()
	i := c.slot(id)
	c.start(t, id, append([]string{filepath.Join(c.binDir, KVServerBin),
		"--id", id,
		"--listen", Addr(c.ports.Server(i)),
		"--advertise", c.srvProxy[id].Addr(),
		"--metrics", Addr(c.ports.Metrics(i)),
		"--data-dir", filepath.Join(c.dataDir, id),
		"--etcd-endpoints", c.etcdVia(t, id),
		"--log-level", logLevel(),
	}, c.cfg.ServerArgs[id]...))
}

// StartECS starts controller name (again): `ecs start -n 0` on the
// cluster's etcd, which leads or stands by.
func (c *ChaosCluster) StartECS(t testing.TB, name string) {
	t.Helper()
	httpPort := c.ports.HTTP
	if name != "ecs1" {
		httpPort = testutil.FreePort(t)
	}
	c.start(t, name, []string{filepath.Join(c.binDir, ECSBin), "start", "-n", "0",
		"--etcd-endpoints", c.etcdVia(t, name),
		"--data-dir", filepath.Join(c.dataDir, name),
		"--http", Addr(httpPort),
		"--replicas", strconv.Itoa(c.cfg.Replicas),
		"--partitions", strconv.Itoa(c.cfg.Partitions),
		"--log-level", logLevel(),
	})
}

func logLevel() string {
	if l := os.Getenv("ECSKV_E2E_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}

// Kill sends SIGKILL to node name (a server or an ECS) and waits for it.
func (c *ChaosCluster) Kill(t testing.TB, name string) {
	t.Helper()
	if p := c.Proc(name); p != nil && p.Running() {
		p.Kill(t)
	}
}

// KillAll sends SIGKILL to every named node that runs, all at once (a power
// cut), and then waits for each to be reaped.
func (c *ChaosCluster) KillAll(t testing.TB, names ...string) {
	t.Helper()
	var killed []*Process
	for _, name := range names {
		if p := c.Proc(name); p != nil && p.Running() {
			_ = p.signalGroup(syscall.SIGKILL)
			killed = append(killed, p)
		}
	}
	for _, p := range killed {
		p.Kill(t) // reaps it
	}
}

// Restart starts node name again with the command line it last had.
func (c *ChaosCluster) Restart(t testing.TB, name string) {
	t.Helper()
	c.mu.Lock()
	argv := c.argv[name]
	c.mu.Unlock()
	c.start(t, name, argv)
}

// LeaderECS returns the name of the ECS that leads now ("" if none or
// unknown), from the election key `ecs status` reports.
func (c *ChaosCluster) LeaderECS(t testing.TB) string {
	t.Helper()
	st, err := c.StatusE(t)
	if err != nil {
		return ""
	}
	// "host pid N http ADDR"
	f := strings.Fields(st.Leader)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "pid" {
			pid, _ := strconv.Atoi(f[i+1])
			if name := c.net.nameOf(pid); strings.HasPrefix(name, "ecs") {
				if p := c.Proc(name); p != nil && p.Running() {
					return name
				}
			}
		}
	}
	return ""
}

// StatusE runs `ecs status --json` against the cluster's etcd.
func (c *ChaosCluster) StatusE(t testing.TB) (StatusJSON, error) {
	t.Helper()
	return statusAt(t, filepath.Join(c.binDir, ECSBin), c.EtcdEndpoint(), nil)
}

// Check runs `ecs check --json`.
func (c *ChaosCluster) Check(t testing.TB) CheckJSON {
	t.Helper()
	return checkAt(t, filepath.Join(c.binDir, ECSBin), c.EtcdEndpoint(), nil)
}

// ClientConfig is the library configuration: the ring from etcd.
func (c *ChaosCluster) ClientConfig() config.Client {
	cfg := config.DefaultClient()
	cfg.EtcdEndpoints = []string{c.EtcdEndpoint()}
	return cfg
}

// NewClient returns a new library client (the caller closes it).
func (c *ChaosCluster) NewClient(ctx context.Context) (*kvclient.Client, error) {
	return kvclient.New(ctx, c.ClientConfig())
}

// Close heals the network and kills every process, then closes the
// proxies. It is idempotent.
func (c *ChaosCluster) Close(t testing.TB) {
	c.net.Heal()
	c.mu.Lock()
	// The controllers first, so they publish no failover of servers that
	// are only being torn down.
	var procs []*Process
	for _, n := range c.ECSNames() {
		if p := c.procs[n]; p != nil {
			procs = append(procs, p)
		}
	}
	for _, id := range c.ServerIDs() {
		if p := c.procs[id]; p != nil {
			procs = append(procs, p)
		}
	}
	c.mu.Unlock()
	for _, p := range procs {
		if p.Running() {
			p.Kill(t)
		}
	}
	if c.etcd != nil && c.etcd.proc != nil && c.etcd.proc.Running() {
		c.etcd.Kill(t)
	}
	c.net.mu.Lock()
	proxies := c.net.proxies
	c.net.proxies = nil
	c.net.mu.Unlock()
	for _, p := range proxies {
		p.Close()
	}
}

// String describes the cluster's layout for the log.
func (c *ChaosCluster) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "etcd %s", c.EtcdEndpoint())
	for _, id := range c.ServerIDs() {
		fmt.Fprintf(&b, ", %s %s via %s", id, Addr(c.ports.Server(c.slot(id))), c.srvProxy[id].Addr())
	}
	return b.String()
}
