package framework

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// statusTimeout bounds one `ecs status`.
const statusTimeout = 15 * time.Second

// StatusJSON is the output of `ecs status --json`.
type StatusJSON struct {
	Epoch      uint64         `json:"epoch"`
	Partitions int            `json:"partitions"`
	Replicas   int            `json:"replicas"`
	Servers    []ServerStatus `json:"servers"`
	Raw        string         `json:"-"` // the command's stdout
}

// ServerStatus is one server in `ecs status --json`.
type ServerStatus struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	Metrics string `json:"metrics"`
	PID     int    `json:"pid"`
}

// Server returns the entry of server id.
func (s StatusJSON) Server(id string) (ServerStatus, bool) {
	for _, srv := range s.Servers {
		if srv.ID == id {
			return srv, true
		}
	}
	return ServerStatus{}, false
}

// Status runs `ecs status --json` and fails the test unless it succeeds.
func (c *Cluster) Status(t testing.TB) StatusJSON {
	t.Helper()
	st, err := c.StatusE(t)
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	return st
}

// StatusE runs `ecs status --json` quietly and returns its error, for
// polling with Eventually.
func (c *Cluster) StatusE(t testing.TB) (StatusJSON, error) {
	t.Helper()
	res := Run(t, RunOptions{Timeout: statusTimeout, Quiet: true}, c.Bin(ECSBin),
		"status", "--etcd-endpoints", c.EtcdEndpoint(), "--json")
	if res.ExitCode != 0 {
		return StatusJSON{}, fmt.Errorf("ecs status exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	var st StatusJSON
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		return StatusJSON{}, fmt.Errorf("ecs status --json: %v; stdout:\n%s", err, res.Stdout)
	}
	st.Raw = res.Stdout
	return st, nil
}

// Admin runs `ecs <args...> --etcd-endpoints <this cluster>` (stop, add, ...).
func (c *Cluster) Admin(t testing.TB, args ...string) Result {
	t.Helper()
	args = append(args, "--etcd-endpoints", c.EtcdEndpoint())
	return Run(t, RunOptions{Timeout: 2 * DefaultStopTimeout}, c.Bin(ECSBin), args...)
}

// Kvclient runs `kvclient --etcd-endpoints <this cluster> args...` once.
func (c *Cluster) Kvclient(t testing.TB, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	res := c.KvclientInput(t, "", args...)
	return res.Stdout, res.Stderr, res.ExitCode
}

// KvclientInput is Kvclient with stdin fed from a pipe (the REPL reads it
// line by line).
func (c *Cluster) KvclientInput(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	args = append([]string{"--etcd-endpoints", c.EtcdEndpoint()}, args...)
	return Run(t, RunOptions{Stdin: stdin}, c.Bin(KVClientBin), args...)
}

// splitFields splits a command line on spaces.
func splitFields(s string) []string { return strings.Fields(s) }
