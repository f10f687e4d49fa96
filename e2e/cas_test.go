//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// condFailedLine is the CLI's answer to a failed condition.
var condFailedLine = regexp.MustCompile(`^CONDITION_FAILED \((current version (\d+)|the key is absent: version 0)\)$`)

// metaLine is get --meta's last line.
var metaLine = regexp.MustCompile(`^\(version (\d+), (no ttl|ttl (\S+))\)$`)

// TestCAS: conditional puts and deletes, compare-and-swap, counters and
// expiry changes through the kvclient binary (one-shot and REPL) and the
// library against a cluster of three servers, each key on a chain of
// three; the versions the CLI prints
// are the library's.
func TestCAS(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(3), framework.WithReplicas(3))
	cli := c.Client(t)
	t.Run("cli", func(t *testing.T) { testCASCommandLine(t, c, cli) })
	t.Run("repl", func(t *testing.T) { testCASREPL(t, c) })
	t.Run("library", func(t *testing.T) { testCASLibrary(t, cli) })
}

// run is one kvclient one-shot: its stdout (trimmed), or for an error its
// message, and its exit status.
func run(t *testing.T, c *framework.Cluster, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := c.Kvclient(t, args...)
	if code == 2 {
		msg, ok := strings.CutPrefix(strings.TrimSpace(stderr), "kvclient: ")
		require.True(t, ok, "kvclient %v: an error is one line kvclient: ...; got %q", args, stderr)
		return msg, code
	}
	return strings.TrimSpace(stdout), code
}

// cliVersion reads key's version with get --meta.
func cliVersion(t *testing.T, c *framework.Cluster, key string) uint64 {
	t.Helper()
	out, code := run(t, c, "get", "--meta", key)
	require.Equal(t, 0, code, out)
	lines := strings.Split(out, "\n")
	m := metaLine.FindStringSubmatch(lines[len(lines)-1])
	require.NotNil(t, m, "get --meta %s printed %q", key, out)
	v, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)
	return v
}

// condFailedVersion checks a failed condition's answer and returns the
// version it names.
func condFailedVersion(t *testing.T, out string, code int) uint64 {
	t.Helper()
	require.Equal(t, 3, code, "a failed condition exits 3: %q", out)
	m := condFailedLine.FindStringSubmatch(out)
	require.NotNil(t, m, "CONDITION_FAILED line: %q", out)
	if m[2] == "" {
		return 0
	}
	v, err := strconv.ParseUint(m[2], 10, 64)
	require.NoError(t, err)
	return v
}

func testCASCommandLine(t *testing.T, c *framework.Cluster, cli *kvclient.Client) {
	const k = "cas-cli"
	expect := func(want string, wantCode int, args ...string) {
		t.Helper()
		out, code := run(t, c, args...)
		require.Equal(t, wantCode, code, "kvclient %v: %q", args, out)
		require.Equal(t, want, out, "kvclient %v", args)
	}
	expect("SUCCESS", 0, "put", "--if-absent", k, "v1")
	v1 := cliVersion(t, c, k)
	require.NotZero(t, v1)
	out, code := run(t, c, "put", "--if-absent", k, "v2")
	require.Equal(t, v1, condFailedVersion(t, out, code), "the failed condition names the current version")

	expect("UPDATE", 0, "put", "--if-version", strconv.FormatUint(v1, 10), k, "v2")
	v2 := cliVersion(t, c, k)
	require.Greater(t, v2, v1)
	var m kvclient.Meta
	got, err := cli.Get(context.Background(), k, kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, "v2", string(got))
	require.Equal(t, v2, m.Version, "the CLI prints the library's version")
	out, code = run(t, c, "put", "--if-version", strconv.FormatUint(v1, 10), k, "stale")
	require.Equal(t, v2, condFailedVersion(t, out, code))

	expect("UPDATE", 0, "cas", k, "v2", "v3")
	out, code = run(t, c, "cas", k, "v2", "v4")
	require.Greater(t, condFailedVersion(t, out, code), v2)
	expect("UPDATE", 0, "put", "--if-value", "v3", k, "v4", "with", "words")
	expect("v4 with words", 0, "get", k)

	v4 := cliVersion(t, c, k)
	out, code = run(t, c, "delete", "--if-version", strconv.FormatUint(v2, 10), k)
	require.Equal(t, v4, condFailedVersion(t, out, code))
	expect("v4 with words", 0, "get", k) // the refused delete changed nothing
	expect("SUCCESS", 0, "delete", "--if-version", strconv.FormatUint(v4, 10), k)
	_, code = run(t, c, "get", k)
	require.Equal(t, 1, code)
	out, code = run(t, c, "put", "--if-value", "v4 with words", k, "x")
	require.Zero(t, condFailedVersion(t, out, code), "an absent key has version 0")
	expect("SUCCESS", 0, "put", "--if-version", "0", k, "again")

	const n = "cas-cli-n"
	expect("1", 0, "incr", n)
	expect("11", 0, "incr", n, "10")
	expect("9", 0, "decr", n, "2")
	expect("-1", 0, "incr", n, "-10")
	expect("value is not an integer", 2, "incr", k)
	expect("again", 0, "get", k)
	expect("UPDATE", 0, "put", n, "9223372036854775807")
	expect("increment would overflow", 2, "incr", n)
	expect("9223372036854775807", 0, "get", n)
	expect(`incr: DELTA must be an integer from -9223372036854775808 to 9223372036854775807, got "1.5"`, 2, "incr", n, "1.5")

	expect("no ttl", 0, "ttl", k)
	expect("SUCCESS", 0, "expire", k, "1h")
	out, code = run(t, c, "ttl", k)
	require.Equal(t, 0, code)
	left, err := time.ParseDuration(out)
	require.NoError(t, err, "ttl printed %q", out)
	require.Greater(t, left, 59*time.Minute)
	require.LessOrEqual(t, left, time.Hour)
	out, code = run(t, c, "get", "--meta", k)
	require.Equal(t, 0, code)
	require.Regexp(t, `^again\n\(version \d+, ttl 59m[0-9.]+s\)$`, out)
	expect("SUCCESS", 0, "persist", k)
	expect("no ttl", 0, "ttl", k)
	expect("again", 0, "get", k)
	expect("NOT_FOUND", 1, "expire", "cas-cli-missing", "1s")
	expect("NOT_FOUND", 1, "persist", "cas-cli-missing")
	_, stderr, code := c.Kvclient(t, "ttl", "cas-cli-missing")
	require.Equal(t, 1, code)
	require.Equal(t, "NOT_FOUND\n", stderr)
	expect("expire: DURATION must be at least 1ms, got 0s", 2, "expire", k, "0s")

	expect("SUCCESS", 0, "expire", k, "300ms")
	testutil.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		_, code := run(t, c, "get", k)
		return code == 1
	}, "%s expired", k)
}

func testCASREPL(t *testing.T, c *framework.Cluster) {
	res := c.KvclientInput(t, strings.Join([]string{
		"put --if-absent cas-r 'a b'",
		"put --if-absent cas-r c",
		"cas cas-r 'a b' c",
		"get --meta cas-r",
		"incr cas-rn 5",
		"decr cas-rn",
		"expire cas-r 1h",
		"persist cas-r",
		"ttl cas-r",
		"delete --if-value x cas-r",
		"delete --if-value c cas-r",
		"ttl cas-r",
	}, "\n")+"\n")
	require.Equal(t, 0, res.ExitCode, "CONDITION_FAILED and NOT_FOUND are answers: stderr %q", res.Stderr)
	lines := nonEmptyLines(res.Stdout)
	require.Len(t, lines, 13, "stdout %q", res.Stdout)
	assert.Equal(t, "SUCCESS", lines[0])
	assert.Regexp(t, condFailedLine, lines[1])
	assert.Equal(t, "UPDATE", lines[2])
	assert.Equal(t, "c", lines[3])
	assert.Regexp(t, `^\(version \d+, no ttl\)$`, lines[4])
	assert.Equal(t, []string{"5", "4", "SUCCESS", "SUCCESS", "no ttl"}, lines[5:10])
	assert.Regexp(t, condFailedLine, lines[10])
	assert.Equal(t, []string{"SUCCESS", "NOT_FOUND"}, lines[11:])
}

func testCASLibrary(t *testing.T, cli *kvclient.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const k, n = "cas-lib", "cas-lib-n"
	var m kvclient.Meta
	_, err := cli.Put(ctx, k, []byte("1"), kvclient.IfAbsent(), kvclient.WithMeta(&m))
	require.NoError(t, err)
	v1 := m.Version
	_, err = cli.Put(ctx, k, []byte("2"), kvclient.IfVersion(v1+1000), kvclient.WithMeta(&m))
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Equal(t, v1, m.Version)
	_, err = cli.Put(ctx, k, []byte("2"), kvclient.IfValue([]byte("1")), kvclient.ReturnPrevious(), kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Equal(t, "1", string(m.Previous))
	require.ErrorIs(t, cli.Delete(ctx, k, kvclient.IfVersion(v1)), kvclient.ErrConditionFailed)

	got, err := cli.Incr(ctx, k, 40)
	require.NoError(t, err)
	require.Equal(t, int64(42), got, "Incr of a value a Put wrote")
	_, err = cli.Put(ctx, n, []byte("x"))
	require.NoError(t, err)
	_, err = cli.Incr(ctx, n, 1)
	require.ErrorIs(t, err, kvclient.ErrNotInteger)
	_, err = cli.Put(ctx, n, []byte("-9223372036854775808"))
	require.NoError(t, err)
	_, err = cli.Incr(ctx, n, -1)
	require.ErrorIs(t, err, kvclient.ErrOverflow)

	require.NoError(t, cli.Expire(ctx, k, time.Hour))
	_, err = cli.Get(ctx, k, kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Greater(t, m.TTL, 59*time.Minute)
	require.NoError(t, cli.Persist(ctx, k))
	_, err = cli.Get(ctx, k, kvclient.WithMeta(&m))
	require.NoError(t, err)
	require.Zero(t, m.TTL)
	require.ErrorIs(t, cli.Expire(ctx, "cas-lib-missing", time.Second), kvclient.ErrNotFound)
	require.ErrorIs(t, cli.Persist(ctx, "cas-lib-missing"), kvclient.ErrNotFound)
}
