package framework

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProcessVerbs(t *testing.T) {
	p := StartProcess(t, ProcessSpec{Name: "sh", Path: "/bin/sh",
		// The trap comes first: once "hello" is out, SIGTERM finds it set.
		Args: []string{"-c", `trap 'echo bye; exit 3' TERM; echo hello; echo oops >&2; while :; do sleep 0.05; done`}})
	line, err := p.WaitForStdout(5*time.Second, "hell")
	require.NoError(t, err)
	require.Equal(t, "hello", line)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return len(p.Stderr()) == 1 }, "stderr line")
	require.Equal(t, []string{"oops"}, p.Stderr())

	require.Equal(t, 3, p.Stop(t, 5*time.Second))
	require.Contains(t, p.Stdout(), "bye")
	require.False(t, Alive(p.PID()))
}

// TestProcessPause uses a process that does not fork: a shell that forks
// can be stopped between fork and exec, leaving the shell in state D (vfork)
// rather than T.
func TestProcessPause(t *testing.T) {
	p := StartProcess(t, ProcessSpec{Path: "/bin/sleep", Args: []string{"30"}})
	state := func() byte { info, _ := ReadProc(p.PID()); return info.State }
	p.Pause(t)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return state() == 'T' }, "stopped")
	p.Resume(t)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return state() != 'T' }, "continued")
	p.Pause(t)
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return state() == 'T' }, "stopped again")
	require.Equal(t, -1, p.Stop(t, 5*time.Second), "Stop continues a paused process so SIGTERM lands")
}

func TestProcessKillAndEarlyExit(t *testing.T) {
	p := StartProcess(t, ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "sleep 30 & wait"}})
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return len(Children(p.PID())) == 1 }, "child")
	child := Children(p.PID())[0]
	require.Equal(t, p.PID(), child.PGID)
	require.Equal(t, -1, p.Kill(t))
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return !Alive(child.PID) }, "group killed")

	q := StartProcess(t, ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "echo partial >&2; exit 4"}})
	_, err := q.WaitForStdout(5*time.Second, "never")
	require.ErrorContains(t, err, "exited with status 4")
	require.ErrorContains(t, err, "partial")
	require.Equal(t, 4, q.ExitCode())
}

func TestRun(t *testing.T) {
	res := Run(t, RunOptions{Stdin: "a\nb\n"}, "/bin/sh", "-c", "cat; echo err >&2; exit 2")
	require.Equal(t, Result{Stdout: "a\nb\n", Stderr: "err\n", ExitCode: 2}, res)
}

func TestPickPorts(t *testing.T) {
	a, b := PickPorts(t, 5), PickPorts(t, 5)
	seen := map[int]bool{}
	for _, p := range append(a.all(), b.all()...) {
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
		require.True(t, PortFree(p))
	}
	require.Equal(t, a.Base+1000+4, a.Metrics(5))
	ln, err := net.Listen("tcp", Addr(a.Etcd))
	require.NoError(t, err)
	defer ln.Close()
	require.False(t, PortFree(a.Etcd))
}

func TestForEach(t *testing.T) {
	var sum atomic.Int64
	require.NoError(t, ForEach(context.Background(), 100, 7, func(_ context.Context, i int) error {
		sum.Add(int64(i))
		return nil
	}))
	require.Equal(t, int64(4950), sum.Load())
	boom := errors.New("boom")
	err := ForEach(context.Background(), 100, 3, func(_ context.Context, i int) error {
		if i == 10 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
}

func TestIDFromCmdline(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/x/kvserver --id s3 --listen 127.0.0.1:1", "s3"},
		{"/x/kvserver --id=s12", "s12"},
		{"/x/kvserver", "?"},
	} {
		require.Equal(t, tc.want, idFromCmdline(tc.in), tc.in)
	}
	require.True(t, strings.HasPrefix(Addr(80), "127.0.0.1:"))
}

func TestProcArgsAndExited(t *testing.T) {
	// The shell keeps its own argv (the trailing "; true" stops it from
	// exec'ing sleep); sleep itself would reject an empty argument and exit.
	p := StartProcess(t, ProcessSpec{Path: "/bin/sh", Args: []string{"-c", "sleep 30; true", "sh", ""}})
	argv, ok := ProcArgs(p.PID())
	require.True(t, ok)
	require.Equal(t, []string{"/bin/sh", "-c", "sleep 30; true", "sh", ""}, argv, "argv kept exactly, empty arguments included")
	exited, states := Exited(p.PID())
	require.False(t, exited)
	require.NotEmpty(t, states)
	require.Equal(t, -1, p.Kill(t))
	exited, _ = Exited(p.PID())
	require.True(t, exited)
	_, ok = ProcArgs(p.PID())
	require.False(t, ok)
}

func TestRSS(t *testing.T) {
	rss, ok := RSS(os.Getpid())
	require.True(t, ok)
	require.Greater(t, rss, int64(1<<20), "this test binary holds more than 1 MiB")
	_, ok = RSS(-1)
	require.False(t, ok)
}
