package framework

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
)

// etcdEnv asks a test binary, re-executed by StartEtcd, to run etcd: its
// value is "DIR,CLIENTPORT,PEERPORT".
const etcdEnv = "ECSKV_E2E_RUN_ETCD"

// RunEtcdIfAsked turns this process into a single-member etcd when StartEtcd
// started it, and never returns then. Call it first in TestMain: the test
// binary is its own etcd, so no etcd binary has to be installed, and the
// harness can kill and restart etcd like any other process.
func RunEtcdIfAsked() {
	spec := os.Getenv(etcdEnv)
	if spec == "" {
		return
	}
	f := strings.Split(spec, ",")
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "%s=%q: want DIR,CLIENTPORT,PEERPORT\n", etcdEnv, spec)
		os.Exit(2)
	}
	cport, _ := strconv.Atoi(f[1])
	pport, _ := strconv.Atoi(f[2])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	e, err := testutil.RunEtcd(f[0], testutil.WithEtcdPorts(cport, pport))
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("etcd ready on %s\n", e.Endpoints[0])
	select {
	case <-sig:
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
	}
	e.Close()
	os.Exit(0)
}

// EtcdProcess is a single-member etcd run by the harness (the test binary
// re-executed, see RunEtcdIfAsked), which a test may kill and restart on
// its data.
type EtcdProcess struct {
	Dir                  string
	ClientPort, PeerPort int
	proc                 *Process
}

// StartEtcd starts etcd with its data in dir on the given ports and waits
// until it serves.
func StartEtcd(t testing.TB, dir string, clientPort, peerPort int) *EtcdProcess {
	t.Helper()
	e := &EtcdProcess{Dir: dir, ClientPort: clientPort, PeerPort: peerPort}
	e.Start(t)
	return e
}

// Endpoint returns the client endpoint, host:port.
func (e *EtcdProcess) Endpoint() string { return Addr(e.ClientPort) }

// Process returns the running process.
func (e *EtcdProcess) Process() *Process { return e.proc }

// Start (re)starts etcd on its data dir and waits until it serves.
func (e *EtcdProcess) Start(t testing.TB) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("framework: etcd: %v", err)
	}
	p, err := startProcess(t, ProcessSpec{Name: "etcd", Path: exe, Args: []string{"-test.run", "^$"},
		Env: []string{fmt.Sprintf("%s=%s,%d,%d", etcdEnv, e.Dir, e.ClientPort, e.PeerPort)}})
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	e.proc = p
	if _, err := p.WaitForStdout(30*time.Second, "etcd ready"); err != nil {
		t.Fatalf("framework: %v", err)
	}
}

// Kill sends SIGKILL to etcd and waits for it to exit.
func (e *EtcdProcess) Kill(t testing.TB) { t.Helper(); e.proc.Kill(t) }
