//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestTenThousandKeys writes 10,000 keys into 5 servers, checks on disk
// that each key is stored exactly on its partition's chain, and reads them
// all back after a restart on the same data.
func TestTenThousandKeys(t *testing.T) {
	const (
		servers    = 5
		partitions = 1024
		workers    = 16
	)
	d := dataset{prefix: "key-", n: 10_000}
	c := framework.NewCluster(t, framework.WithServers(servers), framework.WithReplicas(1),
		framework.WithPartitions(partitions))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := c.Client(t)

	elapsed := putAll(ctx, t, cli, d, workers)
	t.Logf("put %d keys with %d workers in %v: %.0f ops/s", d.n, workers, elapsed.Round(time.Millisecond), rate(d.n, elapsed))
	elapsed = readAll(ctx, t, cli, d, workers)
	t.Logf("got %d keys with %d workers in %v: %.0f ops/s", d.n, workers, elapsed.Round(time.Millisecond), rate(d.n, elapsed))

	ring, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	require.Equal(t, partitions, ring.Partitions)
	require.Equal(t, 1, ring.Replicas)
	require.Len(t, ring.Servers, servers)
	require.Len(t, ring.Chains, partitions)
	owned := map[string]int{}
	for p, ch := range ring.Chains {
		require.Len(t, ch.Members, 1, "chain of partition %d with R=1", p)
		owned[ch.Members[0]]++
	}
	mean := float64(partitions) / servers
	most := slices.Max(slices.Collect(maps.Values(owned)))
	t.Logf("ring epoch %d; partitions per server %v (mean %.1f)", ring.Epoch, owned, mean)
	assert.LessOrEqual(t, float64(most), math.Ceil(1.10*mean), "most loaded server over 1.10x the mean (DESIGN §2)")

	c.Stop(t)
	perServer := checkPlacement(t, c, ring, d)
	t.Logf("keys stored per server: %v", perServer)

	c.Start(t)
	cli = c.Client(t)
	elapsed = readAll(ctx, t, cli, d, workers)
	t.Logf("after restart got %d keys in %v: %.0f ops/s", d.n, elapsed.Round(time.Millisecond), rate(d.n, elapsed))
	after, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	assertSameChains(t, ring, after)
}

// Limits of the TestSemantics cluster, small so the test is fast.
const (
	maxKey   = 64
	maxValue = 1024
)

// cliStep is one kvclient one-shot command and what it must answer.
type cliStep struct {
	name   string
	args   []string
	code   int
	stdout string   // the exact stdout, trimmed; "" means empty
	stderr []string // substrings of stderr (case-insensitive)
	output []string // substrings of stdout+stderr (case-insensitive)
	anyOut bool     // do not check stdout
}

func TestSemantics(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3),
		framework.WithArgs("--max-key-bytes", fmt.Sprint(maxKey), "--max-value-bytes", fmt.Sprint(maxValue)))

	t.Run("cli", func(t *testing.T) { testSemanticsCLI(t, c) })
	t.Run("library", func(t *testing.T) { testSemanticsLibrary(t, c) })
	t.Run("server-limits", func(t *testing.T) { testServerLimits(t, c) })
	t.Run("request-id-reuse", func(t *testing.T) { testRequestIDReuse(t, c) })
	t.Run("repl", func(t *testing.T) {
		res := c.KvclientInput(t, "put a 1\nget a\ndelete a\nget a\nquit\n")
		require.Equal(t, 0, res.ExitCode, "stderr: %s", res.Stderr)
		lines := nonEmptyLines(res.Stdout)
		require.GreaterOrEqual(t, len(lines), 3, "stdout: %q", res.Stdout)
		assert.Equal(t, []string{"SUCCESS", "1", "SUCCESS"}, lines[:3], "stdout: %q", res.Stdout)
		notFound := len(lines) >= 4 && strings.Contains(lines[3], "NOT_FOUND") ||
			strings.Contains(res.Stderr, "NOT_FOUND")
		assert.True(t, notFound, "the last get prints NOT_FOUND; stdout %q, stderr %q", res.Stdout, res.Stderr)
		if len(lines) >= 4 && !strings.Contains(lines[3], "NOT_FOUND") {
			t.Errorf("stdout line 4 is %q: one result line per command, NOT_FOUND expected or on stderr", lines[3])
		}
	})
}

func testSemanticsCLI(t *testing.T, c *framework.Cluster) {
	long := strings.Repeat("k", maxKey+1)
	bigVal := strings.Repeat("x", maxValue+1)
	maxVal := strings.Repeat("y", maxValue)
	steps := []cliStep{
		{name: "put new", args: []string{"put", "cli-k", "v1"}, stdout: "SUCCESS"},
		{name: "put again", args: []string{"put", "cli-k", "v2"}, stdout: "UPDATE"},
		{name: "get", args: []string{"get", "cli-k"}, stdout: "v2"},
		{name: "put words", args: []string{"put", "cli-words", "hello", "big", "world"}, stdout: "SUCCESS"},
		{name: "get words", args: []string{"get", "cli-words"}, stdout: "hello big world"},
		{name: "delete", args: []string{"delete", "cli-k"}, stdout: "SUCCESS"},
		{name: "get deleted", args: []string{"get", "cli-k"}, code: 1, stderr: []string{"NOT_FOUND"}},
		{name: "delete again", args: []string{"delete", "cli-k"}, code: 1, output: []string{"NOT_FOUND"}, anyOut: true},
		{name: "put key too large", args: []string{"put", long, "v"}, code: 2, stderr: []string{"key", fmt.Sprint(maxKey + 1)}},
		{name: "get truncated key", args: []string{"get", long[:maxKey]}, code: 1, stderr: []string{"NOT_FOUND"}},
		{name: "get key too large", args: []string{"get", long}, code: 2, stderr: []string{"key"}},
		{name: "put key at limit", args: []string{"put", long[:maxKey], "v"}, stdout: "SUCCESS"},
		{name: "get key at limit", args: []string{"get", long[:maxKey]}, stdout: "v"},
		{name: "put value too large", args: []string{"put", "cli-big", bigVal}, code: 2, stderr: []string{"value", fmt.Sprint(maxValue + 1)}},
		{name: "get value too large", args: []string{"get", "cli-big"}, code: 1, stderr: []string{"NOT_FOUND"}},
		{name: "put value at limit", args: []string{"put", "cli-max", maxVal}, stdout: "SUCCESS"},
		{name: "get value at limit", args: []string{"get", "cli-max"}, stdout: maxVal},
		{name: "put empty key", args: []string{"put", "", "v"}, code: 2, stderr: []string{"key"}},
		{name: "get empty key", args: []string{"get", ""}, code: 2, stderr: []string{"key"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			stdout, stderr, code := c.Kvclient(t, s.args...)
			assert.Equal(t, s.code, code, "exit status; stdout %q, stderr %q", stdout, stderr)
			if !s.anyOut {
				assert.Equal(t, s.stdout, strings.TrimSpace(stdout), "stdout")
			}
			if s.code == 2 {
				assert.NotEmpty(t, strings.TrimSpace(stderr), "an error needs a message on stderr")
			}
			for _, sub := range s.stderr {
				assert.Contains(t, strings.ToLower(stderr), strings.ToLower(sub), "stderr")
			}
			for _, sub := range s.output {
				assert.Contains(t, strings.ToLower(stdout+stderr), strings.ToLower(sub), "output")
			}
		})
	}
}

func testSemanticsLibrary(t *testing.T, c *framework.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := c.Client(t)
	lim := cli.Ring().Limits
	require.Equal(t, maxKey, lim.MaxKeyBytes, "ring limits carry --max-key-bytes")
	require.Equal(t, maxValue, lim.MaxValueBytes, "ring limits carry --max-value-bytes")

	res, err := cli.Put(ctx, "lib-k", []byte("v1"))
	require.NoError(t, err)
	assert.Equal(t, kvclient.Created, res)
	res, err = cli.Put(ctx, "lib-k", []byte("v2"))
	require.NoError(t, err)
	assert.Equal(t, kvclient.Updated, res)
	got, err := cli.Get(ctx, "lib-k")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(got))
	require.NoError(t, cli.Delete(ctx, "lib-k"))
	_, err = cli.Get(ctx, "lib-k")
	assert.ErrorIs(t, err, kvclient.ErrNotFound)
	assert.ErrorIs(t, cli.Delete(ctx, "lib-k"), kvclient.ErrNotFound)
	res, err = cli.Put(ctx, "lib-k", []byte("v3"))
	require.NoError(t, err)
	assert.Equal(t, kvclient.Created, res, "a put after delete creates the key again")

	res, err = cli.Put(ctx, "lib-empty", []byte{})
	require.NoError(t, err, "an empty value is valid")
	assert.Equal(t, kvclient.Created, res)
	got, err = cli.Get(ctx, "lib-empty")
	require.NoError(t, err)
	assert.Empty(t, got)

	long := strings.Repeat("l", maxKey+1)
	_, err = cli.Put(ctx, long, []byte("v"))
	assert.ErrorIs(t, err, kvclient.ErrKeyTooLarge)
	assert.ErrorContains(t, err, fmt.Sprint(maxKey+1), "the error names the key size")
	_, err = cli.Get(ctx, long)
	assert.ErrorIs(t, err, kvclient.ErrKeyTooLarge)
	_, err = cli.Get(ctx, long[:maxKey])
	assert.ErrorIs(t, err, kvclient.ErrNotFound, "nothing stored under the truncated key")
	_, err = cli.Put(ctx, long[:maxKey], []byte("v"))
	assert.NoError(t, err, "a key of exactly the limit")

	_, err = cli.Put(ctx, "lib-big", make([]byte, maxValue+1))
	assert.ErrorIs(t, err, kvclient.ErrValueTooLarge)
	assert.ErrorContains(t, err, fmt.Sprint(maxValue+1), "the error names the value size")
	_, err = cli.Get(ctx, "lib-big")
	assert.ErrorIs(t, err, kvclient.ErrNotFound, "nothing stored for a refused value")
	full := []byte(strings.Repeat("z", maxValue))
	_, err = cli.Put(ctx, "lib-max", full)
	require.NoError(t, err, "a value of exactly the limit")
	got, err = cli.Get(ctx, "lib-max")
	require.NoError(t, err)
	assert.Equal(t, full, got)

	_, err = cli.Put(ctx, "", []byte("v"))
	assert.ErrorIs(t, err, kvclient.ErrEmptyKey)
	_, err = cli.Get(ctx, "")
	assert.ErrorIs(t, err, kvclient.ErrEmptyKey)
	assert.ErrorIs(t, cli.Delete(ctx, ""), kvclient.ErrEmptyKey)

	// The library and the command line see the same data.
	stdout, _, code := c.Kvclient(t, "get", "lib-k")
	assert.Equal(t, 0, code)
	assert.Equal(t, "v3", strings.TrimSpace(stdout))
	_, _, code = c.Kvclient(t, "put", "cli-to-lib", "from", "cli")
	require.Equal(t, 0, code)
	got, err = cli.Get(ctx, "cli-to-lib")
	require.NoError(t, err)
	assert.Equal(t, "from cli", string(got))
}

// testServerLimits sends oversized keys and values straight to the head of
// their partition over gRPC, bypassing the library's checks: the server must
// refuse them too (DESIGN §8: nothing malformed reaches pebble).
func testServerLimits(t *testing.T, c *framework.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := c.Client(t)
	ring, err := cli.RefreshRing(ctx)
	require.NoError(t, err)
	put := func(key string, value []byte) (*kvpb.Response, error) {
		p := ring.PartitionOf(nil, []byte(key))
		ch := ring.Chain(p)
		srv, ok := ring.Server(ch.Head())
		require.True(t, ok, "head %q of partition %d in the ring", ch.Head(), p)
		conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		return kvpb.NewKVClient(conn).Put(ctx, &kvpb.PutRequest{
			Header: &kvpb.RequestHeader{Epoch: ring.Epoch, ChainVersion: ch.Version, ClientId: 7, Seq: 1},
			Key:    []byte(key), Value: value,
		})
	}
	cases := []struct {
		name, key string
		value     []byte
	}{
		{"key too large", strings.Repeat("s", maxKey+1), []byte("v")},
		{"value too large", "srv-big", make([]byte, maxValue+1)},
		{"empty key", "", []byte("v")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := put(tc.key, tc.value)
			if err == nil {
				assert.NotContains(t, []kvpb.Status{kvpb.Status_SUCCESS, kvpb.Status_UPDATE}, resp.GetStatus(),
					"the server accepted it: %v", resp)
				t.Logf("refused with status %v: %s", resp.GetStatus(), resp.GetMessage())
				return
			}
			t.Logf("refused: %v", err)
		})
	}
	_, err = cli.Get(ctx, "srv-big")
	assert.ErrorIs(t, err, kvclient.ErrNotFound, "nothing stored for the refused value")
}

// TestTTL checks that a key put with a TTL reads until it expires and then
// reads as missing, while a key without TTL stays.
func TestTTL(t *testing.T) {
	const ttl = time.Second
	c := framework.NewCluster(t, framework.WithServers(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := c.Client(t)

	_, err := cli.Put(ctx, "ttl-keep", []byte("forever"))
	require.NoError(t, err)
	sent := time.Now()
	res, err := cli.Put(ctx, "ttl-k", []byte("brief"), kvclient.WithTTL(ttl))
	require.NoError(t, err)
	assert.Equal(t, kvclient.Created, res)
	got, err := cli.Get(ctx, "ttl-k")
	if time.Since(sent) < ttl {
		require.NoError(t, err, "read right after the put")
		assert.Equal(t, "brief", string(got))
	}

	var gone time.Duration
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		_, err := cli.Get(ctx, "ttl-k")
		if err != nil && !errIsNotFound(err) {
			t.Logf("get ttl-k: %v", err)
		}
		gone = time.Since(sent)
		return errIsNotFound(err)
	}, "the key put with TTL %v reads as missing", ttl)
	t.Logf("ttl-k read as missing %v after the put was sent (TTL %v)", gone.Round(time.Millisecond), ttl)
	// The TTL starts when the head applies the put, after it was sent: an
	// expiry before the TTL has run from the send is early.
	assert.GreaterOrEqual(t, gone, ttl-20*time.Millisecond, "expired before its TTL")
	got, err = cli.Get(ctx, "ttl-keep")
	require.NoError(t, err, "a key without TTL stays")
	assert.Equal(t, "forever", string(got))

	// The command line's --ttl.
	sent = time.Now()
	stdout, _, code := c.Kvclient(t, "put", "--ttl", "2s", "cli-ttl", "v")
	require.Equal(t, 0, code)
	assert.Equal(t, "SUCCESS", strings.TrimSpace(stdout))
	stdout, _, code = c.Kvclient(t, "get", "cli-ttl")
	if time.Since(sent) < 2*time.Second {
		assert.Equal(t, 0, code, "read right after the put")
		assert.Equal(t, "v", strings.TrimSpace(stdout))
	}
	testutil.Eventually(t, 10*time.Second, 200*time.Millisecond, func() bool {
		return isNotFound(c.Kvclient(t, "get", "cli-ttl"))
	}, "the key put with --ttl 2s reads as missing")
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
