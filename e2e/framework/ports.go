package framework

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/ecskv/ecskv/common/testutil"
)

// Port layout of one cluster, as `ecs start` uses it: server i (1-based)
// listens on Base+i-1 and serves /metrics on Base+MetricsOffset+i-1; the
// embedded etcd takes Etcd (clients) and Etcd+1 (peers); HTTP is the ECS's
// status page.
type Ports struct {
	Base  int // first server port
	Slots int // server slots reserved: launched servers plus spares for hand-started ones
	Etcd  int // embedded etcd client port; Etcd+1 is its peer port
	HTTP  int // ECS status page and /metrics
}

// MetricsOffset separates a server's metrics port from its service port.
const MetricsOffset = 1000

// Port range PickPorts draws from: below Linux's ephemeral range
// (32768-60999) so that outgoing connections do not take our ports, with
// room for the metrics block above.
const (
	minBasePort = 20000
	maxBasePort = 31000
)

// Server returns the service port of server slot i (1-based).
func (p Ports) Server(i int) int { return p.Base + i - 1 }

// Metrics returns the metrics port of server slot i (1-based).
func (p Ports) Metrics(i int) int { return p.Base + MetricsOffset + i - 1 }

// all lists every port of the block.
func (p Ports) all() []int {
	var ps []int
	for i := 1; i <= p.Slots; i++ {
		ps = append(ps, p.Server(i), p.Metrics(i))
	}
	return append(ps, p.Etcd, p.Etcd+1, p.HTTP)
}

// PickPorts reserves a block of ports with slots server slots in which every
// port is free now (checked by listening on it). Ports are never handed out
// twice by one test process (testutil.ReservePorts), so clusters of one test
// binary cannot collide; another program may still take a port between the
// check and its use.
func PickPorts(t testing.TB, slots int) Ports {
	t.Helper()
	for range 200 {
		base := minBasePort + rand.IntN(maxBasePort-minBasePort)
		// The etcd and HTTP ports follow the server block.
		p := Ports{Base: base, Slots: slots, Etcd: base + slots, HTTP: base + slots + 2}
		if testutil.ReservePorts(p.all()...) {
			return p
		}
	}
	t.Fatalf("framework: no free block of %d server slots found", slots)
	return Ports{}
}

// PortFree reports whether 127.0.0.1:port can be listened on now.
func PortFree(port int) bool {
	ln, err := net.Listen("tcp", Addr(port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func (p Ports) String() string {
	return fmt.Sprintf("servers %d..%d, metrics %d.., etcd %d/%d, http %d",
		p.Base, p.Base+p.Slots-1, p.Base+MetricsOffset, p.Etcd, p.Etcd+1, p.HTTP)
}
