//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestNeverReadingBatchStreams is attack 1 of issue 14: four Batch streams
// each ask for 1000 gets of a 256 KiB value and never read an answer. The
// attacked server's RSS stays under twice its idle RSS, it serves other
// clients meanwhile, closes the streams with ResourceExhausted after
// batch-stall-timeout (2s here), and no data changes.
func TestNeverReadingBatchStreams(t *testing.T) {
	const streams, gets = 4, 1000
	c := framework.NewCluster(t, framework.WithServers(1), framework.WithEnv("ECSKV_BATCH_STALL_TIMEOUT=2s"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := c.Client(t)
	keep := dataset{prefix: "keep", n: 50}
	putAll(ctx, t, cli, keep, 8)
	big := dataset{prefix: "big", n: 1, size: 256 << 10}
	putAll(ctx, t, cli, big, 1)
	readAll(ctx, t, cli, keep, 8)

	pid := c.ServerPID("s1")
	require.NotZero(t, pid)
	idle := idleRSS(t, pid)

	attackers := make([]kvpb.KV_BatchClient, streams)
	for i := range attackers {
		attackers[i] = neverReadingStream(ctx, t, c.ServerAddr("s1"), big.key(0), gets)
	}
	// Sample for several seconds, through the stall and the close, while
	// another client keeps being served.
	var most int64
	until := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(until); i++ {
		rss, ok := framework.RSS(pid)
		require.True(t, ok, "the attacked server is gone")
		most = max(most, rss)
		if i%10 == 0 {
			gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := cli.Get(gctx, keep.key(i%keep.n))
			gcancel()
			require.NoError(t, err, "another client is served during the attack")
			require.Equal(t, keep.value(i%keep.n), v)
		}
		time.Sleep(50 * time.Millisecond) // the sampling period
	}
	t.Logf("RSS idle %d MiB, at most %d MiB during the attack", idle>>20, most>>20)
	require.Less(t, most, 2*idle, "RSS during the attack (idle %d MiB)", idle>>20)

	metrics := "http://" + c.MetricsAddr("s1") + "/metrics"
	testutil.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		return scrapeMetric(t, metrics, "ecskv_batch_streams_closed_total") == streams
	}, "every stalled stream is closed")
	require.GreaterOrEqual(t, scrapeMetric(t, metrics, `ecskv_batch_stalls_total{bound="max-batch-queued-bytes"}`), float64(streams))
	// Reading at last, an attacker gets what was sent, then the error.
	for {
		_, err := attackers[0].Recv()
		if err != nil {
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			require.ErrorContains(t, err, "max-batch-queued-bytes (ECSKV_MAX_BATCH_QUEUED_BYTES)")
			break
		}
	}
	readAll(ctx, t, cli, keep, 8)
	readAll(ctx, t, cli, big, 1)
}

// idleRSS is the median of a few RSS samples of pid.
func idleRSS(t *testing.T, pid int) int64 {
	t.Helper()
	var samples []int64
	for range 5 {
		rss, ok := framework.RSS(pid)
		require.True(t, ok)
		samples = append(samples, rss)
		time.Sleep(100 * time.Millisecond) // the sampling period
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return samples[len(samples)/2]
}

// neverReadingStream opens a Batch stream on a connection of its own and
// sends n gets of key; the caller never reads from it (until it chooses).
func neverReadingStream(ctx context.Context, t *testing.T, addr, key string, n int) kvpb.KV_BatchClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	stream, err := kvpb.NewKVClient(cc).Batch(ctx)
	require.NoError(t, err)
	ops := make([]*kvpb.BatchOp, n)
	for i := range ops {
		ops[i] = &kvpb.BatchOp{Id: uint64(i + 1), Op: &kvpb.BatchOp_Get{Get: &kvpb.GetRequest{Key: []byte(key)}}}
	}
	require.NoError(t, stream.Send(&kvpb.BatchRequest{Ops: ops}))
	return stream
}

// scrapeMetric returns the value of the sample named series (with its
// labels, as exposed) at url; 0 when it is missing.
func scrapeMetric(t *testing.T, url, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(httpGet(t, url), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	return 0
}

// TestSilentConnections is attack 2 of issue 14: with
// ECSKV_MAX_CONNECTIONS=50, 60 TCP connections that never send a byte,
// reopened as soon as the server closes them. A client is served within 2s
// throughout, through the library and the kvclient binary, and its data
// is intact.
func TestSilentConnections(t *testing.T) {
	const silent = 60
	c := framework.NewCluster(t, framework.WithServers(1), framework.WithEnv("ECSKV_MAX_CONNECTIONS=50"))
	addr, metrics := c.ServerAddr("s1"), "http://"+c.MetricsAddr("s1")+"/metrics"
	// The first write of a fresh cluster waits for its read lease; do it
	// before the clock starts.
	servedWithin(t, addr, "warm-up", "v", 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		opened atomic.Int64
	)
	defer func() { cancel(); wg.Wait() }()
	for range silent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			testutil.HoldSilent(ctx, addr, &opened)
		}()
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		return opened.Load() >= silent
	}, "the silent connections are open")

	// A client a second, through the first handshake deadline (5s by
	// default), when the attacker reopens every connection at once.
	for i, began := 0, time.Now(); time.Since(began) < 7*time.Second; i++ {
		key, val := fmt.Sprintf("legit%02d", i), fmt.Sprintf("v%d", i)
		start := time.Now()
		servedWithin(t, addr, key, val, 2*time.Second)
		t.Logf("library client %d served in %v", i, time.Since(start).Round(time.Millisecond))

		start = time.Now()
		res := framework.Run(t, framework.RunOptions{}, c.Bin(framework.KVClientBin),
			"--server", addr, "--request-timeout", "2s", "--dial-timeout", "2s", "get", key)
		took := time.Since(start)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.Equal(t, val+"\n", res.Stdout)
		require.Less(t, took, 2*time.Second, "kvclient get took %v", took)
		time.Sleep(time.Second) // spread the clients over the attack
	}
	require.GreaterOrEqual(t, scrapeMetric(t, metrics, `ecskv_connections_closed_total{reason="handshake_timeout"}`), float64(silent))
	require.Greater(t, opened.Load(), int64(silent), "the attacker reopened its connections")
}

// servedWithin runs a put and a get of key through a new library client
// that reads the ring from addr; all must finish within d.
func servedWithin(t *testing.T, addr, key, val string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cfg := config.DefaultClient()
	cfg.Servers = []string{addr}
	cli, err := kvclient.New(ctx, cfg)
	require.NoError(t, err, "connect")
	defer cli.Close()
	_, err = cli.Put(ctx, key, []byte(val))
	require.NoError(t, err, "put")
	got, err := cli.Get(ctx, key)
	require.NoError(t, err, "get")
	require.True(t, bytes.Equal([]byte(val), got))
}
