//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
)

// TestAddShowsProgress: `ecs add` on a cluster with data, its copies slowed
// down, shows the bytes and keys copied as they rise, before the first
// partition's move ends, and an ETA while moves are pending.
func TestAddShowsProgress(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3), framework.WithPartitions(16),
		framework.WithEnv("ECSKV_TRANSFER_RATE=150000")) // bytes/s per source: the copies take seconds
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := c.Client(t)
	value := []byte(strings.Repeat("v", 1024))
	require.NoError(t, framework.ForEach(ctx, 12000, 8, func(ctx context.Context, i int) error {
		_, err := cli.Put(ctx, fmt.Sprintf("progress-%d", i), value)
		return err
	}))

	res := c.Admin(t, "add", "--timeout", "90s")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "added s4: cluster balanced")
	line := regexp.MustCompile(`^add: epoch \d+, (\d+)/(\d+) partitions moved, \S+ \S+ in ([\d,]+) keys copied, \d+ copying, \d+ under-replicated, ETA (\S+)$`)
	var (
		lastKeys             = -1
		withinFirst, withETA bool
		n                    int
	)
	for _, l := range strings.Split(res.Stderr, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		done, _ := strconv.Atoi(m[1])
		total, _ := strconv.Atoi(m[2])
		keys, _ := strconv.Atoi(strings.ReplaceAll(m[3], ",", ""))
		require.GreaterOrEqual(t, keys, lastKeys, "copied keys went down: %s", l)
		lastKeys = keys
		withinFirst = withinFirst || (done == 0 && keys > 0)
		withETA = withETA || (done < total && m[4] != "unknown")
	}
	require.GreaterOrEqual(t, n, 3, "progress lines:\n%s", res.Stderr)
	require.True(t, withinFirst, "no copy progress shown before the first move ended:\n%s", res.Stderr)
	require.True(t, withETA, "no ETA while moves were pending:\n%s", res.Stderr)
}
