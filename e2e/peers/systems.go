package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// system is one system under test on loopback.
type system interface {
	name() string
	// start runs the system with its data in dir and returns the kvbench
	// target URL once it serves.
	start(ctx context.Context, dir string) (string, error)
	// stop stops everything start started (also after a failed start).
	stop() error
	// benchArgs are extra kvbench flags for this system.
	benchArgs() []string
	// pids are the processes start started; they and their children
	// (an ecs's kvservers) are the system's server processes.
	pids() []int
}

func newSystem(name, binDir string) (system, error) {
	switch name {
	case "ecskv-3":
		return &ecskv{n: 3, binDir: binDir}, nil
	case "ecskv-3-unary":
		return &ecskv{n: 3, binDir: binDir, unary: true}, nil
	case "ecskv-3-nosync":
		return &ecskv{n: 3, binDir: binDir, env: []string{"ECSKV_SYNC=false"}, suffix: "-nosync"}, nil
	case "ecskv-5":
		return &ecskv{n: 5, binDir: binDir}, nil
	case "redis-cluster":
		return &redisCluster{}, nil
	case "etcd-3":
		return &etcdCluster{}, nil
	}
	return nil, fmt.Errorf("unknown system %q (ecskv-3, ecskv-3-unary, ecskv-3-nosync, ecskv-5, redis-cluster, etcd-3)", name)
}

// proc is one process this program started.
type proc struct {
	cmd *exec.Cmd
	log string
}

// spawn starts bin with args, its output in logPath, in a process group of
// its own (so a Ctrl-C at the terminal reaches it only through stop).
func spawn(logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return &proc{cmd: cmd, log: logPath}, nil
}

// stop sends SIGTERM and waits; after timeout it kills the process group
// (the process and any child it left behind).
func (p *proc) stop(timeout time.Duration) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %v: killed", filepath.Base(p.cmd.Path), timeout)
	}
}

// pidsOf returns the process ids of ps.
func pidsOf(ps ...*proc) []int {
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// stopAll stops every process of a multi-process system.
func stopAll(ps []*proc) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.stop(10*time.Second))
	}
	return errors.Join(errs...)
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}

// waitFor polls cond every 100ms until it holds, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// freePorts returns a base port such that base+o is free for every
// offset o in offsets and every i < n.
func freePorts(n int, offsets ...int) (int, error) {
	for try := 0; try < 200; try++ {
		base := 20000 + (os.Getpid()*7+try*97)%30000
		ok := true
		for i := 0; i < n && ok; i++ {
			for _, o := range offsets {
				if !portFree(base + o + i) {
					ok = false
					break
				}
			}
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no free port range")
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// --- ecskv ---

// ecskv is `ecs start -n N` with its embedded etcd; kvbench reads the ring
// from that etcd.
type ecskv struct {
	n      int
	binDir string
	unary  bool     // the library sends unary calls (kvbench --unary): the path before the Batch stream
	env    []string // extra environment (ECSKV_PPROF=true for profiles, ECSKV_SYNC=false)
	suffix string   // of the name, for a variant set by env
	ecs    *proc
	base   int // server sI listens on base+I-1, its metrics on base+1000+I-1, RESP on base+2000+I-1
}

func (e *ecskv) name() string {
	if e.unary {
		return fmt.Sprintf("ecskv-%d-unary", e.n)
	}
	return fmt.Sprintf("ecskv-%d%s", e.n, e.suffix)
}

func (e *ecskv) benchArgs() []string {
	if e.unary {
		return []string{"--unary"}
	}
	return nil
}

func (e *ecskv) start(ctx context.Context, dir string) (string, error) {
	base, err := freePorts(e.n+3, 0, 1000, 2000)
	if err != nil {
		return "", err
	}
	e.base = base
	etcdPort, httpPort := base+e.n, base+e.n+2 // etcd uses etcdPort and etcdPort+1
	e.ecs, err = spawn(filepath.Join(dir, "ecs.log"), e.env, filepath.Join(e.binDir, "ecs"), "start",
		"-n", strconv.Itoa(e.n), "--replicas", "3", "--data-dir", filepath.Join(dir, "data"),
		"--base-port", strconv.Itoa(base), "--etcd-port", strconv.Itoa(etcdPort), "--http", addr(httpPort),
		"--resp-base-port", strconv.Itoa(base+2000))
	if err != nil {
		return "", err
	}
	err = waitFor(ctx, 90*time.Second, "cluster ready", func() bool {
		b, _ := os.ReadFile(e.ecs.log)
		return strings.Contains(string(b), "cluster ready") || e.ecs.cmd.ProcessState != nil
	})
	if b, _ := os.ReadFile(e.ecs.log); err == nil && !strings.Contains(string(b), "cluster ready") {
		err = errors.New("ecs exited")
	}
	if err != nil {
		return "", fmt.Errorf("%w; ecs log:\n%s", err, e.ecs.tail())
	}
	return "ecskv://" + addr(etcdPort), nil
}

func (e *ecskv) stop() error { return e.ecs.stop(30 * time.Second) }

// pids is the ecs, which runs the embedded etcd and the controller; its
// children are the kvservers.
func (e *ecskv) pids() []int { return pidsOf(e.ecs) }

// respAddr is s1's Redis protocol front door of ecskv-3 (the other
// variants are not measured with redis-benchmark). Any server forwards
// every key to its chain, so s1 takes redis-benchmark's connections,
// without --cluster.
func (e *ecskv) respAddr() (string, bool) {
	if e.name() != baseline {
		return "", false
	}
	return addr(e.base + 2000), false
}

// metricsAddr is server i's metrics (and pprof) address.
func (e *ecskv) metricsAddr(i int) string { return addr(e.base + 1000 + i - 1) }

// --- Redis Cluster ---

// redisCluster is 3 masters and 3 replicas, AOF with fsync every second.
type redisCluster struct {
	procs []*proc
	addrs []string
}

func (r *redisCluster) name() string        { return "redis-cluster" }
func (r *redisCluster) benchArgs() []string { return nil }

func (r *redisCluster) start(ctx context.Context, dir string) (string, error) {
	base, err := freePorts(6, 0, 10000) // the cluster bus is port+10000
	if err != nil {
		return "", err
	}
	var addrs []string
	for i := range 6 {
		port := base + i
		d := filepath.Join(dir, strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
		p, err := spawn(filepath.Join(d, "redis.log"), nil, "redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d, "--daemonize", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
		if err != nil {
			return "", err
		}
		r.procs = append(r.procs, p)
		addrs = append(addrs, addr(port))
	}
	for _, a := range addrs {
		if err := waitFor(ctx, 20*time.Second, "redis "+a, func() bool { return !portFree(portOf(a)) }); err != nil {
			return "", err
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	err = waitFor(ctx, 30*time.Second, "redis cluster state ok", func() bool {
		for _, a := range addrs {
			out, _ := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(portOf(a)), "cluster", "info").Output()
			if !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	r.addrs = addrs
	return "redis-cluster://" + strings.Join(addrs, ","), err
}

// respAddr is the first master's address; redis-benchmark --cluster finds
// the others there.
func (r *redisCluster) respAddr() (string, bool) { return r.addrs[0], true }

func (r *redisCluster) stop() error { return stopAll(r.procs) }
func (r *redisCluster) pids() []int { return pidsOf(r.procs...) }

func portOf(a string) int {
	_, p, _ := net.SplitHostPort(a)
	n, _ := strconv.Atoi(p)
	return n
}

// --- etcd ---

// etcdCluster is three etcd members (the etcd of Debian's etcd-server).
type etcdCluster struct{ procs []*proc }

func (e *etcdCluster) name() string        { return "etcd-3" }
func (e *etcdCluster) benchArgs() []string { return nil }

func (e *etcdCluster) start(ctx context.Context, dir string) (string, error) {
	base, err := freePorts(6, 0)
	if err != nil {
		return "", err
	}
	var initial, clients []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("e%d=http://%s", i+1, addr(base+2*i+1)))
		clients = append(clients, addr(base+2*i))
	}
	for i := range 3 {
		client, peer := "http://"+addr(base+2*i), "http://"+addr(base+2*i+1)
		p, err := spawn(filepath.Join(dir, fmt.Sprintf("e%d.log", i+1)), nil, "etcd",
			"--name", fmt.Sprintf("e%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprintf("e%d", i+1)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "ecskv-peers", "--log-level", "error")
		if err != nil {
			return "", err
		}
		e.procs = append(e.procs, p)
	}
	for i, c := range clients {
		err := waitFor(ctx, 30*time.Second, "etcd "+c+" healthy", func() bool { return etcdHealthy(c) })
		if err != nil {
			return "", fmt.Errorf("%w; log:\n%s", err, e.procs[i].tail())
		}
	}
	return "etcd://" + strings.Join(clients, ","), nil
}

func (e *etcdCluster) stop() error { return stopAll(e.procs) }
func (e *etcdCluster) pids() []int { return pidsOf(e.procs...) }

func etcdHealthy(a string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + a + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('}')
	return strings.Contains(line, `"health":"true"`)
}
