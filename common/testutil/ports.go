package testutil

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
)

var (
	portsMu   sync.Mutex       // guards handedOut
	handedOut = map[int]bool{} // every port this process handed out; never reused
)

// errNoFreePorts: the kernel's free ports were all handed out already, or
// never had free neighbours.
var errNoFreePorts = errors.New("testutil: no free loopback ports found")

// FreePort returns a loopback TCP port that was free a moment ago and that
// no other caller in this process has been given, so parallel tests cannot
// collide; another process may still take it before it is used.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortRange(t, 1)
}

// FreeAddr returns "127.0.0.1:port" for a FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePortRange is FreePort for n consecutive ports (such as the ECS's
// embedded etcd: clients on p, peers on p+1); it returns the first.
func FreePortRange(t testing.TB, n int) int {
	t.Helper()
	p, err := freePortRange(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ReservePorts hands out exactly ports, all or none: it reports whether each
// one is free now and none was handed out before. It is for callers that
// need ports in a fixed layout (the e2e port blocks).
func ReservePorts(ports ...int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	for _, p := range ports {
		if p <= 0 || p > 65535 || handedOut[p] || !listenable(p) {
			return false
		}
	}
	for _, p := range ports {
		handedOut[p] = true
	}
	return true
}

// freePortRange starts from ports the kernel picks, which are free, and
// skips any already handed out (the kernel reuses a closed port soon).
func freePortRange(n int) (int, error) {
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		first := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		ports := make([]int, n)
		for i := range ports {
			ports[i] = first + i
		}
		if ReservePorts(ports...) {
			return first, nil
		}
	}
	return 0, errNoFreePorts
}

func listenable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
