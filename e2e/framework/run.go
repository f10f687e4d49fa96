package framework

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultRunTimeout bounds one short command (ecs status, kvclient get, ...).
const DefaultRunTimeout = 30 * time.Second

// Result is the outcome of a finished command.
type Result struct {
	Stdout, Stderr string
	ExitCode       int // -1 when a signal killed it
}

// RunOptions tunes Run.
type RunOptions struct {
	Stdin   string        // fed to the command's standard input (a pipe, not a terminal)
	Timeout time.Duration // 0: DefaultRunTimeout
	Quiet   bool          // do not log the command and its result
	Env     []string      // KEY=VALUE added to the child's environment
}

// Run runs path with args to completion in its own process group and returns
// its output and exit status. A command still running at the timeout is
// killed with its group and fails the test.
func Run(t testing.TB, opts RunOptions, path string, args ...string) Result {
	t.Helper()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Env = append(childEnv(), opts.Env...)
	cmd.Stdin = strings.NewReader(opts.Stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitDelay
	name := filepath.Base(path)
	if err := cmd.Start(); err != nil {
		t.Fatalf("framework: start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("framework: %s %s still running after %v; killed. stdout:\n%s\nstderr:\n%s",
			name, strings.Join(args, " "), timeout, stdout.String(), stderr.String())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	if !opts.Quiet {
		t.Logf("framework: $ %s %s -> exit %d, stdout %s, stderr %s", name, Shorten(strings.Join(args, " "), 200),
			res.ExitCode, Shorten(fmt.Sprintf("%q", res.Stdout), 300), Shorten(fmt.Sprintf("%q", res.Stderr), 300))
	}
	return res
}

// Shorten cuts s to n bytes, noting how long it was.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:n], len(s))
}
