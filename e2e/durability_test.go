//go:build e2e

package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvserver/storage"
	"github.com/stretchr/testify/require"
)

// Shape of TestChainPowerCuts: R=3 on three servers, so every chain has
// every server and each round cuts every member of every chain.
const (
	powerCutServers    = 3
	powerCutPartitions = 16
	powerCutResume     = 30 * time.Second // writes succeed again after a restart
	powerCutConverge   = 30 * time.Second // every chain has R members again
)

// powerCutEnv turns on the kvservers' test-only storage that loses, at the
// next start, whatever was not synced: a kill -9 then costs a power cut.
var powerCutEnv = storage.LoseUnsyncedEnv + "=1"

// TestChainPowerCuts checks DESIGN §4's durability invariant the way a
// power cut tests it: every kvserver runs on storage that drops what it
// did not sync when it restarts (storage.LoseUnsyncedFS), and each round
// kills -9 every member of every chain under a write load, at a random
// moment: in odd rounds all at once, in even ones one by one, each kill
// after a random gap or after the ECS removed the previous victim from
// every chain and the shrunk chains took writes. It restarts them on their
// data and waits until writes succeed and every chain is whole again. At
// the end every acknowledged write must read back with its value (an
// overwritten key: its last acknowledged value, or that of a later write
// whose outcome the writer did not learn) and `ecs check` must find the
// replicas identical. A chain that acknowledged a write before every
// member synced it would lose that write here.
func TestChainPowerCuts(t *testing.T) {
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ECSKV_POWERCUT_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 0, 64)
		require.NoError(t, err, "$ECSKV_POWERCUT_SEED")
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %#x (ECSKV_POWERCUT_SEED replays the schedule)", seed)
	rounds := envInt(t, "ECSKV_POWERCUT_ROUNDS", 8)
	env := []string{powerCutEnv}
	if os.Getenv("ECSKV_POWERCUT_NOSYNC") == "1" {
		// Servers that acknowledge unsynced writes: the test must fail.
		env = append(env, "ECSKV_SYNC=false")
	}

	c := framework.NewCluster(t, framework.WithServers(powerCutServers), framework.WithReplicas(3),
		framework.WithPartitions(powerCutPartitions), framework.WithEnv(env...))
	ids := c.ServerIDs()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l := startWriteLoad(t, cli, loadConfig{prefix: "pc", workers: 8, hot: 4, hotEvery: 3, valueSize: 64, opTimeout: 2 * time.Second})
	l.hist = recordHistory(t, c)

	var dropped int64
	for round := 1; round <= rounds; round++ {
		// A random moment under load, with writes acknowledged since the last
		// round.
		l.waitAcks(t, l.acks.Load()+200, powerCutResume)
		time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))

		order := slices.Clone(ids)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		// Before each kill after the first: nothing (all at once), a random
		// gap, or until the ECS removed the previous victim from every chain
		// and the others acknowledged writes alone.
		waits := make([]powerCutWait, len(order))
		if round%2 == 0 {
			for i := 1; i < len(waits); i++ {
				waits[i] = powerCutWait{gap: time.Duration(20+rng.IntN(300)) * time.Millisecond, failover: rng.IntN(2) == 0}
			}
		}
		acks := l.acks.Load()
		l.hist.note("round %d: kill -9 %v, waits %v (%d writes acknowledged)", round, order, waits, acks)
		argv := killServers(t, c, order, func(i int) {
			if waits[i].failover {
				awaitRemoved(t, cli, order[i-1], time.Now())
				l.waitAcks(t, l.acks.Load()+50, powerCutResume)
			}
			time.Sleep(waits[i].gap)
		})
		t.Logf("round %d: killed %v, waits %v, with %d writes acknowledged before, %d at the end",
			round, order, waits, acks, l.acks.Load())

		cut := time.Now()
		procs := map[string]*framework.Process{}
		for _, id := range order {
			procs[id] = c.RestartServer(t, id, argv[id], env...)
		}
		for _, id := range order {
			dropped += droppedAtStart(t, procs[id], round)
		}
		l.waitAcks(t, l.acks.Load()+100, powerCutResume)
		resumed := time.Since(cut)
		_, took := waitConverged(t, c, powerCutConverge)
		t.Logf("round %d: writes resumed %v after the restart, chains whole %v later",
			round, resumed.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	// The storage must have had something to drop, or the rounds tested
	// nothing a plain kill does not.
	require.Positive(t, dropped, "bytes the restarted servers dropped as unsynced")

	l.stop(t)
	waitConverged(t, c, powerCutConverge)
	l.verify(ctx, t, cli)
	assertCheckClean(t, c, l.hist)
	t.Logf("%d rounds in %v; %d unsynced bytes dropped at restarts", rounds, time.Since(began).Round(time.Millisecond), dropped)
}

// powerCutWait is what TestChainPowerCuts waits for before a kill: the
// victim before it failed over, if failover, and then gap.
type powerCutWait struct {
	gap      time.Duration
	failover bool
}

func (w powerCutWait) String() string {
	if w.failover {
		return "failover+" + w.gap.String()
	}
	return w.gap.String()
}

// killServers sends SIGKILL to each of ids in order, calling before(i)
// before the i-th after the first, then waits until all have exited. It
// returns each one's command line.
func killServers(t *testing.T, c *framework.Cluster, ids []string, before func(i int)) map[string][]string {
	t.Helper()
	argv, pids := map[string][]string{}, map[string]int{}
	for _, id := range ids {
		pid := c.ServerPID(id)
		require.NotZero(t, pid, "%s runs", id)
		args, ok := framework.ProcArgs(pid)
		require.True(t, ok, "command line of %s (pid %d)", id, pid)
		argv[id], pids[id] = args, pid
	}
	for i, id := range ids {
		if i > 0 {
			before(i)
		}
		require.NoError(t, syscall.Kill(pids[id], syscall.SIGKILL), "kill -9 %s", id)
	}
	for _, id := range ids {
		var states []string
		require.True(t, testutil.WaitUntil(10*time.Second, 2*time.Millisecond, func() bool {
			var exited bool
			exited, states = framework.Exited(pids[id])
			return exited
		}), "%s (pid %d) exited after SIGKILL; threads %v", id, pids[id], states)
	}
	return argv
}

// droppedRE finds the byte count in the storage's startup warning.
var droppedRE = regexp.MustCompile(`"bytes-dropped":\s*(\d+)`)

// filesCutRE finds the files the storage cut back in its startup warning.
var filesCutRE = regexp.MustCompile(`"files":\s*\[[^\]]*\]`)

// droppedAtStart waits for p's warning that it runs on storage losing
// unsynced data, and returns how many bytes it dropped.
func droppedAtStart(t *testing.T, p *framework.Process, round int) int64 {
	t.Helper()
	var line string
	found := testutil.WaitUntil(powerCutResume, 10*time.Millisecond, func() bool {
		i := slices.IndexFunc(p.Stderr(), func(l string) bool { return strings.Contains(l, "TEST ONLY") })
		if i >= 0 {
			line = p.Stderr()[i]
		}
		return i >= 0 || !p.Running()
	})
	require.True(t, found && line != "", "round %d: %s warns that it loses unsynced data; stderr:\n%s",
		round, p.Name(), strings.Join(p.Stderr(), "\n"))
	m := droppedRE.FindStringSubmatch(line)
	require.NotNil(t, m, "round %d: %s: bytes-dropped in %q", round, p.Name(), line)
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	t.Logf("round %d: %s dropped %d unsynced bytes in %s", round, p.Name(), n, filesCutRE.FindString(line))
	return n
}
