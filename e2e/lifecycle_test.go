//go:build e2e

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatusAndStop checks `ecs status --json`, every server's /metrics and
// `ecs stop`.
func TestStatusAndStop(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithPartitions(64))
	st := c.Status(t)
	t.Logf("ecs status --json:\n%s", st.Raw)
	assert.Positive(t, st.Epoch, "epoch")
	assert.Equal(t, 64, st.Partitions)
	assert.Equal(t, 1, st.Replicas)
	require.Len(t, st.Servers, 3)
	pids := map[int]string{}
	for _, id := range c.ServerIDs() {
		s, ok := st.Server(id)
		if !assert.True(t, ok, "status lists %s", id) {
			continue
		}
		assert.Equal(t, "active", s.State, "%s state", id)
		assert.Equal(t, c.ServerAddr(id), s.Address, "%s address", id)
		assert.Equal(t, c.MetricsAddr(id), s.Metrics, "%s metrics address", id)
		if assert.Positive(t, s.PID, "%s pid", id) {
			info, alive := framework.ReadProc(s.PID)
			assert.True(t, alive, "%s pid %d is a live process", id, s.PID)
			assert.Contains(t, info.Cmdline, framework.KVServerBin, "%s pid %d runs kvserver", id, s.PID)
			pids[s.PID] = id
		}
		if s.Metrics != "" {
			assert.Contains(t, httpGet(t, "http://"+s.Metrics+"/metrics"), "ecskv_", "%s /metrics", id)
		}
	}
	// DESIGN §9: the ECS serves /metrics too, on --http.
	assert.Contains(t, httpGet(t, "http://"+framework.Addr(c.Ports().HTTP)+"/metrics"), "ecskv_", "ECS /metrics")

	res := c.Admin(t, "stop")
	require.Equal(t, 0, res.ExitCode, "ecs stop: %s", res.Stderr)
	code, exited := c.ECS().Wait(10 * time.Second)
	require.True(t, exited, "ecs still running 10s after `ecs stop` returned")
	assert.Equal(t, 0, code, "ecs exit status after `ecs stop`")
	for pid, id := range pids {
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool { return !framework.Alive(pid) },
			"kvserver %s (pid %d) gone after `ecs stop`", id, pid)
	}
	c.WaitServersGone(t, time.Second)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", url)
	return string(body)
}

// TestSecondStartFails checks that `ecs start` refuses a data dir already in
// use and an etcd port already taken, at once and with a reason.
func TestSecondStartFails(t *testing.T) {
	const refuseWithin = 10 * time.Second
	c := framework.NewCluster(t, framework.WithServers(2))
	ecsBin := c.Bin(framework.ECSBin)
	refused := func(t *testing.T, name string, args []string) (stderr string) {
		t.Helper()
		p := framework.StartProcess(t, framework.ProcessSpec{Name: name, Path: ecsBin, Args: args})
		code, ok := p.Wait(refuseWithin)
		if !ok {
			p.Kill(t)
			t.Fatalf("%s still running %v after start; it should have refused", name, refuseWithin)
		}
		stderr = strings.TrimSpace(strings.Join(p.Stderr(), "\n"))
		assert.NotEqual(t, 0, code, "exit status")
		assert.NotEmpty(t, stderr, "a reason on stderr")
		assert.NotContains(t, strings.Join(p.Stdout(), "\n"), "cluster ready")
		return stderr
	}

	t.Run("same data dir", func(t *testing.T) {
		// Fresh ports, so only the data dir is shared.
		ports := framework.PickPorts(t, c.Servers())
		stderr := refused(t, "ecs-2", c.StartArgs(c.DataDir(), ports))
		t.Logf("refused with: %s", stderr)
		// The running cluster is unharmed.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cli := c.Client(t)
		_, err := cli.Put(ctx, "still-here", []byte("yes"))
		require.NoError(t, err)
		got, err := cli.Get(ctx, "still-here")
		require.NoError(t, err)
		assert.Equal(t, "yes", string(got))
		assert.True(t, c.ECS().Running())
	})

	t.Run("server ids of a running cluster", func(t *testing.T) {
		// Another data dir and ports, but the running cluster's etcd: its
		// s1 and s2 are live, so nothing is launched under their ids.
		before := c.Status(t)
		ports := framework.PickPorts(t, c.Servers())
		args := append(c.StartArgs(framework.TempDir(t, "data"), ports), "--etcd-endpoints", c.EtcdEndpoint())
		stderr := refused(t, "ecs-4", args)
		assert.Contains(t, stderr, "s1 is served by a running process at "+c.ServerAddr("s1"))
		assert.Equal(t, 1, strings.Count(stderr, "\n")+1, "one line: %s", stderr)
		after := c.Status(t)
		require.Equal(t, len(before.Servers), len(after.Servers))
		for i, s := range after.Servers {
			assert.Equal(t, "active", s.State, "%s", s.ID)
			assert.Equal(t, before.Servers[i].Incarnation, s.Incarnation, "%s restarted or replaced", s.ID)
		}
		assert.Equal(t, before.Epoch, after.Epoch, "the ring changed")
	})

	t.Run("etcd port in use", func(t *testing.T) {
		ports := framework.PickPorts(t, c.Servers())
		ln, err := net.Listen("tcp", framework.Addr(ports.Etcd))
		require.NoError(t, err)
		defer ln.Close()
		stderr := refused(t, "ecs-3", c.StartArgs(framework.TempDir(t, "data"), ports))
		assert.Contains(t, stderr, strconv.Itoa(ports.Etcd), "the reason names the port")
		if n := strings.Count(stderr, "\n") + 1; n > 1 {
			t.Logf("note: %d lines on stderr, a one-line reason is expected", n)
		}
	})
}

// TestHandStartedServerAdmitted starts a kvserver by hand and waits for the
// ECS to admit it; keys written before and while it joins stay readable
// (once rebalancing moves partitions to it, they move with their data).
func TestHandStartedServerAdmitted(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := c.Client(t)
	before := dataset{prefix: "before-", n: 200}
	putAll(ctx, t, cli, before, 4)

	began := time.Now()
	p := c.StartKVServer(t, "s4")
	var last framework.StatusJSON
	admitted := testutil.WaitUntil(30*time.Second, 200*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			t.Logf("ecs status: %v", err)
			return false
		}
		last = st
		s, ok := st.Server("s4")
		return ok && s.State == "active"
	})
	require.True(t, admitted, "ecs status lists s4 as active within 30s; last status:\n%s", last.Raw)
	t.Logf("s4 admitted %v after its start; ring epoch %d", time.Since(began).Round(time.Millisecond), last.Epoch)
	s, _ := last.Server("s4")
	assert.Equal(t, c.ServerAddr("s4"), s.Address)
	assert.Equal(t, p.PID(), s.PID)
	assert.Len(t, last.Servers, 4)
	assert.True(t, p.Running())

	// The cluster keeps serving while (and after) s4 joins.
	during := dataset{prefix: "during-", n: 200}
	putAll(ctx, t, cli, during, 4)
	readAll(ctx, t, cli, before, 4)
	readAll(ctx, t, cli, during, 4)
	t.Logf("ring epoch %d after the reads", cli.Ring().Epoch)

	began = time.Now()
	assert.Equal(t, 0, p.Stop(t, 0), "s4 exit status after SIGTERM")
	t.Logf("s4 stopped in %v", time.Since(began).Round(time.Millisecond))
}

// TestRestartAfterKill kills every process of the cluster with SIGKILL while
// writes are in flight, restarts it on the same data and reads back every
// acknowledged write (R=1 servers sync each write before acknowledging).
func TestRestartAfterKill(t *testing.T) {
	const workers = 8
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := c.Client(t)
	settled := dataset{prefix: "before-", n: 300}
	putAll(ctx, t, cli, settled, workers)

	// Writers run until the crash; each key is written once.
	live := dataset{prefix: "live-", n: 1 << 20}
	var (
		mu      sync.Mutex // guards acked, unknown
		acked   []int
		unknown []int
		nAcked  atomic.Int64
		wg      sync.WaitGroup
	)
	wctx, stopWriters := context.WithCancel(ctx)
	defer func() { stopWriters(); wg.Wait() }() // also when the test fails early
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; wctx.Err() == nil && i < live.n; i += workers {
				octx, ocancel := context.WithTimeout(wctx, 3*time.Second)
				_, err := cli.Put(octx, live.key(i), live.value(i))
				ocancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, i)
					nAcked.Add(1)
				} else {
					unknown = append(unknown, i)
				}
				mu.Unlock()
			}
		}()
	}
	testutil.Eventually(t, 30*time.Second, 5*time.Millisecond, func() bool { return nAcked.Load() >= 300 },
		"in-flight writes acknowledged before the crash")
	c.Kill(t)
	stopWriters()
	wg.Wait()
	t.Logf("killed with %d writes acknowledged, %d unacknowledged", len(acked), len(unknown))

	before := cli.Ring()
	c.Start(t)
	fresh := c.Client(t)
	readAll(ctx, t, fresh, settled, workers)
	assertSameChains(t, before, fresh.Ring())
	err := framework.ForEach(ctx, len(acked), workers, func(ctx context.Context, j int) error {
		i := acked[j]
		got, err := fresh.Get(ctx, live.key(i))
		if err != nil {
			return err
		}
		if string(got) != string(live.value(i)) {
			t.Errorf("%s = %q, want %q", live.key(i), got, live.value(i))
		}
		return nil
	})
	require.NoError(t, err, "every acknowledged write survives kill -9")
	found := 0
	for _, i := range unknown {
		got, err := fresh.Get(ctx, live.key(i))
		switch {
		case errIsNotFound(err):
		case err != nil:
			t.Errorf("get %s: %v", live.key(i), err)
		case string(got) != string(live.value(i)):
			t.Errorf("unacknowledged %s = %q, want %q or missing", live.key(i), got, live.value(i))
		default:
			found++
		}
	}
	t.Logf("%d acknowledged writes all read back; %d of %d unacknowledged ones were applied",
		len(acked), found, len(unknown))
}
