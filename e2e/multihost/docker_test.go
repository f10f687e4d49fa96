//go:build multihost

package multihost

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
)

// project is the compose project of every run: fixed, so that a run first
// takes down what an interrupted one left.
const project = "ecskv-multihost"

// Addresses in the layout's /24 (config/deploy/compose.yaml).
const (
	firstServerHost = 11 // s1 .. s5 at .11 .. .15
	firstEtcdHost   = 21
	firstECSHost    = 31
)

// layout is the compose layout of config/deploy/compose.yaml under project.
type layout struct {
	docker  string   // path of the docker CLI
	compose []string // docker-compose, or docker compose
	file    string   // absolute path of config/deploy/compose.yaml
	image   string
	prefix  string // first three octets of the network's /24
}

// newLayout finds Docker and Compose (skipping the test without them) and
// the image (failing without it).
func newLayout(t *testing.T) *layout {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("multihost: skipped: docker is not installed")
	}
	if out, err := exec.Command(docker, "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("multihost: skipped: the Docker daemon does not answer: %s", strings.TrimSpace(string(out)))
	}
	l := &layout{docker: docker, image: os.Getenv("ECSKV_IMAGE")}
	if l.image == "" {
		l.image = "ecskv:dev"
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		l.compose = []string{p}
	} else if exec.Command(docker, "compose", "version").Run() == nil {
		l.compose = []string{docker, "compose"}
	} else {
		t.Skip("multihost: skipped: neither docker-compose nor docker compose is installed")
	}
	if l.file, err = filepath.Abs(filepath.Join("..", "..", "config", "deploy", "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	if res := l.run(t, time.Minute, l.docker, "image", "inspect", "--format", "{{.Id}}", l.image); res.ExitCode != 0 {
		t.Fatalf("multihost: no image %s: run `make image` (or `make multihost`, which builds it)", l.image)
	}
	return l
}

// run runs a command quietly and returns its result; a long one fails the test.
func (l *layout) run(t testing.TB, timeout time.Duration, path string, args ...string) framework.Result {
	t.Helper()
	env := []string{"ECSKV_IMAGE=" + l.image, fmt.Sprintf("ECSKV_PARTITIONS=%d", partitions)}
	if l.prefix != "" { // before up picks one, compose's default stands
		env = append(env, "ECSKV_NET_PREFIX="+l.prefix)
	}
	return framework.Run(t, framework.RunOptions{Timeout: timeout, Quiet: true, Env: env}, path, args...)
}

// must runs a command, logs it and fails the test unless it exits 0.
func (l *layout) must(t testing.TB, timeout time.Duration, path string, args ...string) string {
	t.Helper()
	res := l.run(t, timeout, path, args...)
	t.Logf("multihost: $ %s %s", filepath.Base(path), strings.Join(args, " "))
	if res.ExitCode != 0 {
		t.Fatalf("multihost: %s %s exited %d: %s%s", filepath.Base(path), strings.Join(args, " "), res.ExitCode,
			res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout)
}

// composeArgs prefixes args with the compose command, file and project.
func (l *layout) composeArgs(args ...string) (string, []string) {
	return l.compose[0], append(append(l.compose[1:], "-f", l.file, "-p", project), args...)
}

// composeMust runs a compose command that must succeed.
func (l *layout) composeMust(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	path, full := l.composeArgs(args...)
	return l.must(t, timeout, path, full...)
}

// down removes the project's containers, network and volumes.
func (l *layout) down(t testing.TB) {
	t.Helper()
	l.composeMust(t, 3*time.Minute, "down", "-v", "--remove-orphans", "-t", "2")
}

// up takes down what an earlier run left, picks a free /24 and starts the
// layout; the test's cleanup takes it down again, with the containers' last
// log lines when the test failed.
func (l *layout) up(t *testing.T) {
	t.Helper()
	l.down(t)
	l.prefix = freePrefix(t, l)
	t.Cleanup(func() {
		if t.Failed() {
			path, args := l.composeArgs("logs", "--no-color", "--tail", "40")
			res := l.run(t, time.Minute, path, args...)
			t.Logf("multihost: last log lines of every container:\n%s%s", res.Stdout, res.Stderr)
		}
		l.down(t)
	})
	l.composeMust(t, 5*time.Minute, "up", "-d")
	t.Logf("multihost: layout up on %s.0/24: etcd %s", l.prefix, l.endpoints())
}

// container returns the id of service's container.
func (l *layout) container(t testing.TB, service string) string {
	t.Helper()
	id := l.composeMust(t, time.Minute, "ps", "-q", service)
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("multihost: want one container of %s, got %q", service, id)
	}
	return id
}

// dockerMust runs a docker command that must succeed.
func (l *layout) dockerMust(t testing.TB, args ...string) string {
	t.Helper()
	return l.must(t, 2*time.Minute, l.docker, args...)
}

// network is the name compose gives the layout's network.
func (l *layout) network() string { return project + "_ecskv" }

// addr is the address of host n in the layout's /24.
func (l *layout) addr(n int) string { return fmt.Sprintf("%s.%d", l.prefix, n) }

// serverAddr is kvserver i's (1-based) address.
func (l *layout) serverAddr(i int) string { return l.addr(firstServerHost + i - 1) }

// serviceAddr is the address of a server's (s1..s5) or an ECS's (ecs1,
// ecs2) container.
func (l *layout) serviceAddr(svc string) string {
	var n int
	if _, err := fmt.Sscanf(svc, "ecs%d", &n); err == nil {
		return l.addr(firstECSHost + n - 1)
	}
	if _, err := fmt.Sscanf(svc, "s%d", &n); err == nil {
		return l.serverAddr(n)
	}
	panic("multihost: no address for service " + svc)
}

// endpoints lists the etcd members' client addresses, comma-separated.
func (l *layout) endpoints() string {
	var eps []string
	for i := range 3 {
		eps = append(eps, l.addr(firstEtcdHost+i)+":2379")
	}
	return strings.Join(eps, ",")
}

// freePrefix returns the first 172.28.N.0/24 (N from 5) that overlaps no
// Docker network's subnet.
func freePrefix(t testing.TB, l *layout) string {
	t.Helper()
	var used []*net.IPNet
	ids := strings.Fields(l.dockerMust(t, "network", "ls", "-q"))
	if len(ids) > 0 {
		out := l.dockerMust(t, append([]string{"network", "inspect", "--format",
			"{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
		for _, s := range strings.Fields(out) {
			if _, n, err := net.ParseCIDR(s); err == nil {
				used = append(used, n)
			}
		}
	}
	for third := 5; third < 255; third++ {
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("172.28.%d.0/24", third))
		if !overlapsAny(cand, used) {
			return fmt.Sprintf("172.28.%d", third)
		}
	}
	t.Fatalf("multihost: no free /24 in 172.28.0.0/16 among Docker's networks")
	return ""
}

func overlapsAny(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if u.Contains(n.IP) || n.Contains(u.IP) {
			return true
		}
	}
	return false
}
