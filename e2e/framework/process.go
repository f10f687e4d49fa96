package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the process verbs.
const (
	// DefaultStopTimeout bounds a graceful stop (SIGTERM to exit).
	DefaultStopTimeout = 30 * time.Second
	// killTimeout bounds the wait for a SIGKILLed process to be reaped.
	killTimeout = 10 * time.Second
	// waitDelay bounds how long Wait keeps reading output after the process
	// exited, in case a grandchild inherited its stdout.
	waitDelay = 2 * time.Second
)

// ProcessSpec describes a process to start.
type ProcessSpec struct {
	Name  string    // log prefix; default the binary's base name
	Path  string    // executable
	Args  []string  // arguments, without argv[0]
	Stdin io.Reader // nil: /dev/null
	Env   []string  // KEY=VALUE added to the child's environment
}

// Process is a child process in its own process group, with its output
// logged to the test and recorded. Create it with StartProcess.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  *output

	done     chan struct{} // closed once the process has been reaped
	exitCode int           // valid after done; -1 when killed by a signal
	waitErr  error         // valid after done

	stopOnce sync.Once // guards the cleanup stop
}

// StartProcess starts spec in a new process group. Its output goes to t.Log,
// prefixed with the name, while the test runs; t.Cleanup stops it (SIGTERM,
// then SIGKILL of its group) if it still runs.
func StartProcess(t testing.TB, spec ProcessSpec) *Process {
	t.Helper()
	p, err := startProcess(t, spec)
	if err != nil {
		t.Fatalf("framework: %v", err)
	}
	return p
}

func startProcess(t testing.TB, spec ProcessSpec) (*Process, error) {
	t.Helper()
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	p := &Process{name: name, done: make(chan struct{}), out: newOutput(name, t.Logf)}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(childEnv(), spec.Env...)
	cmd.Stdin = spec.Stdin
	cmd.Stdout = &lineWriter{emit: func(l string) { p.out.add("stdout", l) }}
	cmd.Stderr = &lineWriter{emit: func(l string) { p.out.add("stderr", l) }}
	// Own process group, so Kill reaches whatever it starts that stays in the
	// group; SIGKILL if this test binary dies (e.g. on -timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitDelay
	p.cmd = cmd
	t.Logf("framework: start %s: %s %s", name, spec.Path, strings.Join(spec.Args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go p.wait()
	t.Cleanup(func() {
		p.stopOnce.Do(func() { p.cleanupStop(t) })
		p.out.detach()
	})
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	p.cmd.Stdout.(*lineWriter).flush()
	p.cmd.Stderr.(*lineWriter).flush()
	p.exitCode = -1
	if ps := p.cmd.ProcessState; ps != nil {
		p.exitCode = ps.ExitCode()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // a non-zero status is reported by ExitCode
	}
	p.waitErr = err
	close(p.done)
}

// cleanupStop ends a process the test left running.
func (p *Process) cleanupStop(t testing.TB) {
	if !p.Running() {
		_ = p.signalGroup(syscall.SIGKILL) // stray members of its group
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.signalGroup(syscall.SIGCONT) // a paused process handles SIGTERM only once continued
	if _, ok := p.Wait(DefaultStopTimeout); !ok {
		t.Logf("framework: %s did not exit %v after SIGTERM; killing its group", p.name, DefaultStopTimeout)
	}
	_ = p.signalGroup(syscall.SIGKILL)
	if _, ok := p.Wait(killTimeout); !ok {
		t.Errorf("framework: %s (pid %d) survived SIGKILL", p.name, p.PID())
	}
}

// Name returns the log prefix of the process.
func (p *Process) Name() string { return p.name }

// PID returns the process id (also its process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the exit status after Done: -1 when a signal killed it.
func (p *Process) ExitCode() int {
	<-p.done
	return p.exitCode
}

// Wait waits up to timeout for the process to exit; ok is false on timeout.
func (p *Process) Wait(timeout time.Duration) (exitCode int, ok bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitCode, true
	case <-t.C:
		return 0, false
	}
}

// Stop sends SIGTERM and waits up to timeout (0: DefaultStopTimeout) for the
// exit. A process that does not exit in time fails the test and is killed
// with its group. It returns the exit status.
func (p *Process) Stop(t testing.TB, timeout time.Duration) int {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.signalGroup(syscall.SIGCONT) // in case it was paused
	}
	code, ok := p.Wait(timeout)
	if !ok {
		t.Errorf("framework: %s (pid %d) did not exit within %v of SIGTERM; killing it", p.name, p.PID(), timeout)
		return p.Kill(t)
	}
	return code
}

// Kill sends SIGKILL to the process group and waits for the exit. It returns
// the exit status (-1 when the signal killed it).
func (p *Process) Kill(t testing.TB) int {
	t.Helper()
	_ = p.signalGroup(syscall.SIGKILL)
	code, ok := p.Wait(killTimeout)
	if !ok {
		t.Fatalf("framework: %s (pid %d) not reaped within %v of SIGKILL", p.name, p.PID(), killTimeout)
	}
	return code
}

// Pause stops the whole process group (SIGSTOP).
func (p *Process) Pause(t testing.TB) {
	t.Helper()
	if err := p.signalGroup(syscall.SIGSTOP); err != nil {
		t.Fatalf("framework: pause %s: %v", p.name, err)
	}
}

// Resume continues a paused process group (SIGCONT).
func (p *Process) Resume(t testing.TB) {
	t.Helper()
	if err := p.signalGroup(syscall.SIGCONT); err != nil {
		t.Fatalf("framework: resume %s: %v", p.name, err)
	}
}

// Signal sends sig to the process alone (not its group).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

func (p *Process) signalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-p.PID(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // the group is gone already
	}
	return err
}

// Stdout returns the stdout lines so far.
func (p *Process) Stdout() []string {
	out, _, _ := p.out.snapshot()
	return out
}

// Stderr returns the stderr lines so far.
func (p *Process) Stderr() []string {
	_, errs, _ := p.out.snapshot()
	return errs
}

// WaitForStdout waits up to timeout for a stdout line containing substr and
// returns it. It fails early when the process exits first.
func (p *Process) WaitForStdout(timeout time.Duration, substr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		out, _, changed := p.out.snapshot()
		for _, l := range out {
			if strings.Contains(l, substr) {
				return l, nil
			}
		}
		select {
		case <-changed:
		case <-p.done:
			// Lines written just before the exit are flushed before done.
			if l, ok := findLine(p.Stdout(), substr); ok {
				return l, nil
			}
			return "", fmt.Errorf("%s exited with status %d before printing %q; stderr:\n%s",
				p.name, p.exitCode, substr, tail(p.Stderr(), 20))
		case <-ctx.Done():
			return "", fmt.Errorf("%s printed no %q within %v", p.name, substr, timeout)
		}
	}
}

func findLine(lines []string, substr string) (string, bool) {
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return l, true
		}
	}
	return "", false
}

// tail returns the last n lines joined by newlines.
func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
