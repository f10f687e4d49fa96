package launcher

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ecskv/ecskv/config"
	"go.uber.org/zap"
)

// child is one kvserver process launched by `ecs start -n N`.
type child struct {
	id      string
	addr    string
	metrics string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	index   int           // i of s<i>; picks its ports
	removed bool          // stopped by `ecs remove`: its exit is expected (guarded by Launcher.mu)
}

// Launcher starts and stops local kvserver processes.
type Launcher struct {
	cfg config.ECS
	tls config.TLS // passed on to the servers
	// msgBytes is the servers' --max-message-bytes: what the cluster's key
	// and value limits need, and no more a client could send.
	msgBytes int
	lg       *zap.Logger
	bin      string

	mu        sync.Mutex // guards children, endpoints and child.removed
	children  []*child
	endpoints []string // etcd endpoints children are given
	out       io.Writer
	outMu     sync.Mutex     // serialises prefixed output lines
	exited    chan string    // ids of children that exited unexpectedly; never blocks the sender
	wg        sync.WaitGroup // child watchers and kill timers of removed children; joined by stop
}

// Exited reports the id of every launched server that exits unexpectedly
// (not through StopServer or Stop). It is buffered and never blocks the
// launcher: reports nobody reads are dropped.
func (l *Launcher) Exited() <-chan string { return l.exited }

// maxChildren bounds the exited buffer; config allows at most 1000 servers
// at start and `ecs add` adds at most 100 at a time.
const maxChildren = 4096

// ServerPorts lists the ports local server i (1-based) uses.
func ServerPorts(cfg config.ECS, i int) (grpcPort, metricsPort int) {
	return cfg.BasePort + i - 1, cfg.BasePort + 1000 + i - 1
}

// dhtArgs gives local server i its DHT API address, with dht-base-port.
func (l *Launcher) dhtArgs(i int) []string {
	if l.cfg.DHTBasePort == 0 {
		return nil
	}
	return []string{"--dht-listen", net.JoinHostPort(l.cfg.Host, strconv.Itoa(l.cfg.DHTBasePort+i-1))}
}

// respArgs gives local server i its Redis protocol address, with
// resp-base-port.
func (l *Launcher) respArgs(i int) []string {
	if l.cfg.RESPBasePort == 0 {
		return nil
	}
	return []string{"--resp-listen", net.JoinHostPort(l.cfg.Host, strconv.Itoa(l.cfg.RESPBasePort+i-1))}
}

// New prepares a launcher of cfg.KVServerBin (default: kvserver beside
// this binary) that gives the servers tls's flags and msgBytes as their
// --max-message-bytes and forwards their output, prefixed, to out.
func New(cfg config.ECS, tls config.TLS, msgBytes int, lg *zap.Logger, out io.Writer) (*Launcher, error) {
	bin := cfg.KVServerBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("ecs: find kvserver binary: %w", err)
		}
		bin = filepath.Join(filepath.Dir(exe), "kvserver")
	}
	if _, err := os.Stat(bin); err != nil && cfg.Servers > 0 {
		return nil, fmt.Errorf("ecs: kvserver binary: %w (build it with `make build` or pass --kvserver-bin)", err)
	}
	return &Launcher{cfg: cfg, tls: tls, msgBytes: msgBytes, lg: lg, bin: bin, out: out, exited: make(chan string, maxChildren)}, nil
}

// Start launches servers s1..sN.
func (l *Launcher) Start(etcdEndpoints []string) error {
	l.mu.Lock()
	l.endpoints = etcdEndpoints
	l.mu.Unlock()
	for i := 1; i <= l.cfg.Servers; i++ {
		if err := l.startOne(i, "s"+strconv.Itoa(i), etcdEndpoints); err != nil {
			return err
		}
	}
	return nil
}

func (l *Launcher) startOne(i int, id string, etcdEndpoints []string) error {
	gp, mp := ServerPorts(l.cfg, i)
	c := &child{
		id:      id,
		addr:    net.JoinHostPort(l.cfg.Host, strconv.Itoa(gp)),
		metrics: net.JoinHostPort(l.cfg.Host, strconv.Itoa(mp)),
		done:    make(chan struct{}),
		index:   i,
	}
	tlsArgs, err := serverTLSArgs(l.cfg, l.tls, c.id)
	if err != nil {
		return err
	}
	c.cmd = exec.Command(l.bin, append([]string{
		"--id", c.id, "--listen", c.addr, "--metrics", c.metrics,
		"--data-dir", filepath.Join(l.cfg.DataDir, c.id),
		"--etcd-endpoints", strings.Join(etcdEndpoints, ","),
		"--cluster", l.cfg.Cluster, "--lease-ttl", l.cfg.LeaseTTL.String(),
		"--log-level", l.cfg.LogLevel, "--max-message-bytes", strconv.Itoa(l.msgBytes)}, slices.Concat(tlsArgs, l.dhtArgs(i), l.respArgs(i))...)...)
	// A child outlives nothing: if the ecs dies, the kernel sends it SIGTERM.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, _ := c.cmd.StdoutPipe()
	stderr, _ := c.cmd.StderrPipe()
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("ecs: start %s: %w", c.id, err)
	}
	l.wg.Add(1)
	go l.watch(c, stdout, stderr)
	l.mu.Lock()
	l.children = append(l.children, c)
	l.mu.Unlock()
	l.lg.Info("launched kvserver", zap.String("id", c.id), zap.String("addr", c.addr), zap.Int("pid", c.cmd.Process.Pid))
	return nil
}

// watch forwards c's output, then reaps c and reports an unexpected exit.
// It reads the output to its end before Wait, which closes the pipes
// (os/exec): a dying server's last lines are not lost.
func (l *Launcher) watch(c *child, stdout, stderr io.Reader) {
	defer l.wg.Done()
	var copying sync.WaitGroup
	copying.Add(2)
	go func() { defer copying.Done(); l.copyPrefixed(c.id, stdout) }()
	go func() { defer copying.Done(); l.copyPrefixed(c.id, stderr) }()
	copying.Wait()
	if err := c.cmd.Wait(); err != nil {
		l.lg.Warn("kvserver exited", zap.String("id", c.id), zap.Error(err))
	}
	close(c.done)
	l.mu.Lock()
	expected := c.removed
	l.mu.Unlock()
	if !expected {
		select {
		case l.exited <- c.id:
		default: // nobody listens once the cluster is up; the detector sees it
		}
	}
}

// copyPrefixed forwards a child's output line by line as "[id] line".
func (l *Launcher) copyPrefixed(id string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.outMu.Lock()
		fmt.Fprintf(l.out, "[%s] %s\n", id, sc.Text())
		l.outMu.Unlock()
	}
	// Past an overlong line, read on: a child must never block on a full
	// pipe, and watch waits for the end of it.
	_, _ = io.Copy(io.Discard, r)
}

// IDs returns the launched server ids.
func (l *Launcher) IDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.children))
	for i, c := range l.children {
		out[i] = c.id
	}
	return out
}

// Add launches k more servers for `ecs add`: ids and ports continue after
// the highest index launched, skipping ids taken by other servers; name,
// when set, is the one server's id instead (`ecs replace`), on the next
// index's ports. It returns the ids launched, also when it fails part way.
func (l *Launcher) Add(k int, name string, taken func(id string) bool) ([]string, error) {
	l.mu.Lock()
	i, endpoints := 0, l.endpoints
	for _, c := range l.children {
		i = max(i, c.index)
	}
	l.mu.Unlock()
	var ids []string
	for len(ids) < k {
		i++
		id := "s" + strconv.Itoa(i)
		if name != "" {
			id = name
		}
		if taken(id) {
			if name != "" {
				return nil, fmt.Errorf("%w: server id %s is taken", ErrLaunch, name)
			}
			continue
		}
		gp, mp := ServerPorts(l.cfg, i)
		if mp > 65535 {
			return ids, fmt.Errorf("%w: %s would need port %d", ErrLaunch, id, mp)
		}
		if err := CheckPortsFree(l.cfg.Host, map[int]string{gp: "kvserver " + id, mp: "kvserver " + id + " metrics"}); err != nil {
			if name != "" {
				continue // the name's ports may be any free index's
			}
			return ids, fmt.Errorf("%w: %w", ErrLaunch, err)
		}
		if err := l.startOne(i, id, endpoints); err != nil {
			return ids, fmt.Errorf("%w: %w", ErrLaunch, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Restart relaunches the exited child id on its data dir and ports.
func (l *Launcher) Restart(id string) (int, error) {
	l.mu.Lock()
	var old *child
	for _, c := range l.children {
		if c.id == id && !c.removed {
			old = c
		}
	}
	endpoints := l.endpoints
	l.mu.Unlock()
	if old == nil {
		return 0, fmt.Errorf("%s was not launched by the leader ECS (or was removed); start it by hand with its own command line", id)
	}
	select {
	case <-old.done:
	default:
		return 0, fmt.Errorf("%s is running (pid %d)", id, old.cmd.Process.Pid)
	}
	gp, mp := ServerPorts(l.cfg, old.index)
	if err := CheckPortsFree(l.cfg.Host, map[int]string{gp: "kvserver " + id, mp: "kvserver " + id + " metrics"}); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	l.mu.Lock()
	l.children = slices.DeleteFunc(l.children, func(c *child) bool { return c == old })
	l.mu.Unlock()
	if err := l.startOne(old.index, old.id, endpoints); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.children[len(l.children)-1].cmd.Process.Pid, nil
}

// StopServer stops the child with this id (SIGTERM, then SIGKILL after
// 10s) and reports whether this ECS launched it.
func (l *Launcher) StopServer(id string) bool {
	l.mu.Lock()
	var c *child
	for _, ch := range l.children {
		if ch.id == id {
			c = ch
		}
	}
	if c != nil {
		c.removed = true
	}
	l.mu.Unlock()
	if c == nil {
		return false
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			l.lg.Warn("removed kvserver did not stop in time; killing", zap.String("id", c.id))
			_ = c.cmd.Process.Kill()
		}
	}()
	return true
}

// Stop sends SIGTERM to every child and waits; stragglers get SIGKILL.
func (l *Launcher) Stop(timeout time.Duration) {
	defer l.wg.Wait()
	l.mu.Lock()
	children := l.children
	l.mu.Unlock()
	for _, c := range children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	end := time.Now().Add(timeout)
	for _, c := range children {
		select {
		case <-c.done:
		case <-time.After(time.Until(end)):
			l.lg.Warn("kvserver did not stop in time; killing", zap.String("id", c.id))
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}
