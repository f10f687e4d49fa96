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
	Leader     string         `json:"leader"`
	Auth       bool           `json:"auth"` // key operations need a login
	Servers    []ServerStatus `json:"servers"`
	// UnderReplicated counts partitions whose chain has fewer than R members.
	UnderReplicated int `json:"under_replicated"`
	// Unavailable counts partitions whose chain has no active member.
	Unavailable int `json:"unavailable"`
	Learners    int `json:"learners"`
	// Unsynced counts partitions with a promoted member still syncing.
	Unsynced int        `json:"unsynced"`
	Moves    MoveStatus `json:"moves"`
	Raw      string     `json:"-"` // the command's stdout
}

// MoveStatus is the rebalancing progress in `ecs status --json`.
type MoveStatus struct {
	Pending    int     `json:"pending"`
	Done       int     `json:"done"`
	Total      int     `json:"total"`
	InProgress int     `json:"in_progress"`
	KeysMoved  uint64  `json:"keys_moved"`
	ETASeconds float64 `json:"eta_seconds"`
}

// ServerStatus is one server in `ecs status --json`.
type ServerStatus struct {
	ID          string         `json:"id"`
	Address     string         `json:"address"`
	State       string         `json:"state"`
	Metrics     string         `json:"metrics"`
	PID         int            `json:"pid"`
	Epoch       uint64         `json:"epoch"`
	Incarnation uint64         `json:"incarnation"`
	Roles       map[string]int `json:"partitions"` // head, middle, tail
	Learning    int            `json:"learning"`
}

// Replicas returns how many chains the server is a member of.
func (s ServerStatus) Replicas() int { return s.Roles["head"] + s.Roles["middle"] + s.Roles["tail"] }

// Converged reports whether every chain has R members, none of them a
// server that is not active, no learner is copying, no promoted member is
// syncing and no move is pending;
// otherwise it says what is left.
func (s StatusJSON) Converged() (bool, string) {
	var left []string
	if s.UnderReplicated > 0 {
		left = append(left, fmt.Sprintf("%d under-replicated", s.UnderReplicated))
	}
	if s.Unavailable > 0 {
		left = append(left, fmt.Sprintf("%d unavailable", s.Unavailable))
	}
	if s.Learners > 0 {
		left = append(left, fmt.Sprintf("%d learners", s.Learners))
	}
	if s.Unsynced > 0 {
		left = append(left, fmt.Sprintf("%d syncing", s.Unsynced))
	}
	if s.Moves.Pending > 0 {
		left = append(left, fmt.Sprintf("%d moves pending", s.Moves.Pending))
	}
	for _, srv := range s.Servers {
		if srv.State != "active" && srv.Replicas()+srv.Learning > 0 {
			left = append(left, fmt.Sprintf("%s (%s) still in %d chains", srv.ID, srv.State, srv.Replicas()+srv.Learning))
		}
	}
	return len(left) == 0, strings.Join(left, ", ")
}

// Summary is a one-line digest for logs.
func (s StatusJSON) Summary() string {
	var srv []string
	for _, x := range s.Servers {
		srv = append(srv, fmt.Sprintf("%s:%s:%d/%d/%d+%d", x.ID, x.State,
			x.Roles["head"], x.Roles["middle"], x.Roles["tail"], x.Learning))
	}
	return fmt.Sprintf("epoch %d, under-replicated %d, unavailable %d, learners %d, moves %d/%d pending %d; servers (id:state:head/middle/tail+learning) %s",
		s.Epoch, s.UnderReplicated, s.Unavailable, s.Learners, s.Moves.Done, s.Moves.Total, s.Moves.Pending, strings.Join(srv, " "))
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
	return statusAt(t, c.Bin(ECSBin), c.EtcdEndpoint(), c.AdminTLS())
}

func statusAt(t testing.TB, ecsBin, endpoint string, tlsArgs []string) (StatusJSON, error) {
	t.Helper()
	res := Run(t, RunOptions{Timeout: statusTimeout, Quiet: true}, ecsBin,
		append([]string{"status", "--etcd-endpoints", endpoint, "--json"}, tlsArgs...)...)
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

// CheckJSON is the output of `ecs check --json`.
type CheckJSON struct {
	Epoch       uint64            `json:"epoch"`
	Partitions  int               `json:"partitions"`
	Servers     int               `json:"servers"`
	Skipped     []string          `json:"skipped"`
	Differences []json.RawMessage `json:"differences"`
	ExitCode    int               `json:"-"`
	Stderr      string            `json:"-"`
	Raw         string            `json:"-"`
}

// CheckDifference is one partition whose replicas disagree, as `ecs check
// --json` reports it.
type CheckDifference struct {
	Partition int    `json:"partition"`
	Kind      string `json:"kind"` // seq, hash or missing
	Replicas  []struct {
		Server       string `json:"server"`
		Missing      bool   `json:"missing"`
		AppliedSeq   uint64 `json:"applied_seq"`
		Keys         uint64 `json:"keys"`
		ChainVersion uint64 `json:"chain_version"`
	} `json:"replicas"`
}

// String reads like `ecs check`'s own line:
// "partition 11: seq differs: s2=seq 453 keys 40 v3 s1=seq 451 keys 40 v3".
func (d CheckDifference) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "partition %d: %s differs:", d.Partition, d.Kind)
	for _, r := range d.Replicas {
		if r.Missing {
			fmt.Fprintf(&b, " %s=missing", r.Server)
			continue
		}
		fmt.Fprintf(&b, " %s=seq %d keys %d v%d", r.Server, r.AppliedSeq, r.Keys, r.ChainVersion)
	}
	return b.String()
}

// Summary describes the report in one line: the exit status, and the
// first n differences or the error.
func (r CheckJSON) Summary(n int) string {
	switch {
	case r.ExitCode == 0:
		return fmt.Sprintf("ecs check clean (%d partitions, %d servers)", r.Partitions, r.Servers)
	case r.ExitCode != 1:
		return fmt.Sprintf("ecs check exited %d: %s", r.ExitCode, r.Stderr)
	}
	var lines []string
	for _, raw := range r.Differences[:min(n, len(r.Differences))] {
		var d CheckDifference
		if err := json.Unmarshal(raw, &d); err != nil {
			lines = append(lines, string(raw))
			continue
		}
		lines = append(lines, d.String())
	}
	if len(r.Differences) > n {
		lines = append(lines, fmt.Sprintf("(%d more)", len(r.Differences)-n))
	}
	return fmt.Sprintf("ecs check: %d differences in %d partitions, skipped %v: %s",
		len(r.Differences), r.Partitions, r.Skipped, strings.Join(lines, "; "))
}

// Check runs `ecs check --json` and returns its report and exit status
// (0 agree, 1 differences, 2 error). Unparsable output with exit status 0
// or 1 fails the test.
func (c *Cluster) Check(t testing.TB) CheckJSON {
	t.Helper()
	return checkAt(t, c.Bin(ECSBin), c.EtcdEndpoint(), c.AdminTLS())
}

func checkAt(t testing.TB, ecsBin, endpoint string, tlsArgs []string) CheckJSON {
	t.Helper()
	res := Run(t, RunOptions{Timeout: 3 * time.Minute, Quiet: true}, ecsBin,
		append([]string{"check", "--etcd-endpoints", endpoint, "--json"}, tlsArgs...)...)
	rep := CheckJSON{ExitCode: res.ExitCode, Stderr: strings.TrimSpace(res.Stderr), Raw: res.Stdout}
	if res.ExitCode == 0 || res.ExitCode == 1 {
		if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
			t.Fatalf("framework: ecs check --json exited %d: %v; stdout:\n%s", res.ExitCode, err, res.Stdout)
		}
	}
	return rep
}

// Admin runs `ecs <args...> --etcd-endpoints <this cluster>` (stop, add, ...).
func (c *Cluster) Admin(t testing.TB, args ...string) Result {
	t.Helper()
	return c.AdminInput(t, "", args...)
}

// AdminInput is Admin with stdin fed from a pipe (`ecs user add` reads the
// password from it).
func (c *Cluster) AdminInput(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	args = append(append(args, "--etcd-endpoints", c.EtcdEndpoint()), c.AdminTLS()...)
	return Run(t, RunOptions{Stdin: stdin, Timeout: 2 * DefaultStopTimeout}, c.Bin(ECSBin), args...)
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
	return c.KvclientRun(t, RunOptions{Stdin: stdin}, args...)
}

// KvclientRun runs kvclient with opts (stdin, environment) against this
// cluster: through etcd, or on a secure cluster through s1 with the client
// certificate.
func (c *Cluster) KvclientRun(t testing.TB, opts RunOptions, args ...string) Result {
	t.Helper()
	target := []string{"--etcd-endpoints", c.EtcdEndpoint()}
	if c.cfg.secure {
		target = []string{"--server", c.ServerAddr("s1"), "--certs-dir", c.CertsDir()}
	}
	return Run(t, opts, c.Bin(KVClientBin), append(target, args...)...)
}

// splitFields splits a command line on spaces.
func splitFields(s string) []string { return strings.Fields(s) }
