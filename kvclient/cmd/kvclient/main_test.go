package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/ecskv/ecskv/kvclient/repl"
	"github.com/stretchr/testify/require"
)

// memClient is an in-memory repl.Client holding one key, "k" = "v". Every
// live key has version 1 and no TTL; conditions are honoured against that.
type memClient struct{ data map[string]string }

// check applies the condition of opts to key and fills their Meta.
func (m *memClient) check(key string, opts []kvclient.OpOption) error {
	o := kvclient.ReadOptions(opts...)
	v, ok := m.data[key]
	ver := uint64(0)
	if ok {
		ver = 1
	}
	if o.Meta != nil {
		*o.Meta = kvclient.Meta{Version: ver, Existed: ok}
	}
	if o.Cond == nil {
		return nil
	}
	holds := map[kvpb.Condition_Kind]bool{
		kvpb.Condition_ABSENT:  !ok,
		kvpb.Condition_VERSION: ver == o.Cond.Version,
		kvpb.Condition_VALUE:   ok && v == string(o.Cond.Value),
	}[o.Cond.Kind]
	if !holds {
		return kvclient.ErrConditionFailed
	}
	return nil
}

func (m *memClient) Put(_ context.Context, key string, value []byte, opts ...kvclient.OpOption) (kvclient.PutResult, error) {
	if err := m.check(key, opts); err != nil {
		return 0, err
	}
	_, ok := m.data[key]
	m.data[key] = string(value)
	if ok {
		return kvclient.Updated, nil
	}
	return kvclient.Created, nil
}

func (m *memClient) Get(_ context.Context, key string, opts ...kvclient.OpOption) ([]byte, error) {
	v, ok := m.data[key]
	if !ok {
		return nil, kvclient.ErrNotFound
	}
	return []byte(v), m.check(key, opts)
}

func (m *memClient) Login(context.Context, string, string) error { return nil }
func (m *memClient) Logout()                                     {}

func (m *memClient) Delete(_ context.Context, key string, opts ...kvclient.OpOption) error {
	if err := m.check(key, opts); err != nil {
		return err
	}
	if _, ok := m.data[key]; !ok {
		return kvclient.ErrNotFound
	}
	delete(m.data, key)
	return nil
}

// Incr adds delta to an integer value (absent: 0).
func (m *memClient) Incr(_ context.Context, key string, delta int64, _ ...kvclient.OpOption) (int64, error) {
	n := int64(0)
	if v, ok := m.data[key]; ok {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, kvclient.ErrNotInteger
		}
	}
	m.data[key] = strconv.FormatInt(n+delta, 10)
	return n + delta, nil
}

// Expire and Persist change nothing the fake keeps; a missing key is NOT_FOUND.
func (m *memClient) Expire(_ context.Context, key string, _ time.Duration) error {
	if _, ok := m.data[key]; !ok {
		return kvclient.ErrNotFound
	}
	return nil
}

func (m *memClient) Persist(ctx context.Context, key string) error {
	return m.Expire(ctx, key, time.Second)
}

func (m *memClient) KeyRange(context.Context) (string, error)     { return "ranges;", nil }
func (m *memClient) KeyRangeRead(context.Context) (string, error) { return "read-ranges;", nil }
func (m *memClient) Close() error                                 { return nil }

// Scan returns every key in one page.
func (m *memClient) Scan(_ context.Context, prefix, _ string, _ int, _ ...kvclient.OpOption) ([]kvclient.KV, string, error) {
	var out []kvclient.KV
	for k, v := range m.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kvclient.KV{Key: k, Value: []byte(v)})
		}
	}
	return out, "", nil
}

type result struct {
	code           int
	stdout, stderr string
}

// runApp runs the binary's logic with stdin as a pipe (no terminal).
func runApp(t *testing.T, dialErr error, stdin string, args ...string) result {
	t.Helper()
	return runAppOn(t, &memClient{data: map[string]string{"k": "v"}}, dialErr, stdin, args...)
}

// runAppOn is runApp against the cluster c.
func runAppOn(t *testing.T, c *memClient, dialErr error, stdin string, args ...string) result {
	t.Helper()
	for _, v := range []string{"ECSKV_CONFIG", "ECSKV_USER", "ECSKV_PASSWORD", "ECSKV_PASSWORD_FILE", "ECSKV_CERTS_DIR"} {
		t.Setenv(v, "") // a developer's shell must not change the results
	}
	var out, errOut bytes.Buffer
	a := &app{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		isTerminal: func() bool { return false },
		dial: func(context.Context, config.Client) (repl.Client, error) {
			if dialErr != nil {
				return nil, dialErr
			}
			return c, nil
		},
	}
	code := a.run(args)
	return result{code, out.String(), errOut.String()}
}

func TestOneShot(t *testing.T) {
	down := errors.New("kvclient: read ring from etcd: context deadline exceeded")
	tests := []struct {
		name    string
		dialErr error
		args    []string
		want    result
	}{
		{"put new", nil, []string{"put", "new", "a", "b"}, result{0, "SUCCESS\n", ""}},
		{"put update", nil, []string{"put", "k", "w"}, result{0, "UPDATE\n", ""}},
		{"put without a value", nil, []string{"put", "k"}, result{2, "", "kvclient: usage: put [--ttl DURATION] [--if-absent | --if-version N | --if-value OLD] KEY VALUE...\n"}},
		{"put null stores it", nil, []string{"put", "k", "null"}, result{0, "UPDATE\n", ""}},
		{"put ttl", nil, []string{"--server", "127.0.0.1:5001", "put", "--ttl", "5s", "new", "v"}, result{0, "SUCCESS\n", ""}},
		{"put flag after key is value", nil, []string{"put", "new", "v", "--ttl", "5s"}, result{0, "SUCCESS\n", ""}},
		{"get", nil, []string{"get", "k"}, result{0, "v\n", ""}},
		{"get missing", nil, []string{"get", "x"}, result{1, "", "NOT_FOUND\n"}},
		{"delete", nil, []string{"delete", "k"}, result{0, "SUCCESS\n", ""}},
		{"delete missing", nil, []string{"delete", "x"}, result{1, "NOT_FOUND\n", ""}},
		{"keyrange", nil, []string{"keyrange", "--raw"}, result{0, "ranges;\n", ""}},
		{"keyrange_read", nil, []string{"keyrange_read", "--raw"}, result{0, "read-ranges;\n", ""}},
		{"keyrange both modes", nil, []string{"keyrange", "--raw", "--table"}, result{2, "", "kvclient: usage: keyrange [--table | --raw]\n"}},
		{"scan", nil, []string{"scan"}, result{0, "k v\n", "(1 key)\n"}},
		{"scan keys only", nil, []string{"scan", "--keys-only", "--prefix", "k", "--limit", "5"}, result{0, "k\n", "(1 key)\n"}},
		{"scan bad limit", nil, []string{"scan", "--limit", "-1"}, result{2, "", "kvclient: scan: --limit wants a number of keys >= 0 (0: all), got \"-1\"\n"}},
		{"usage", nil, []string{"get"}, result{2, "", "kvclient: usage: get [--meta] KEY\n"}},
		{"unknown command", nil, []string{"connect", "x"}, result{2, "",
			"kvclient: unknown command \"connect\"; want put, get, delete, cas, incr, decr, expire, persist, ttl, scan, watch, keyrange or keyrange_read (none starts the REPL)\n"}},
		{"bad flag", nil, []string{"--nope", "get", "k"}, result{2, "", "kvclient: unknown flag: --nope\n"}},
		{"bad config", nil, []string{"--server", "nohost", "get", "k"}, result{2, "",
			"kvclient: config: invalid: server: must be host:port, got \"nohost\"\n"}},
		{"cluster down", down, []string{"get", "k"}, result{2, "", "kvclient: read ring from etcd: context deadline exceeded\n"}},
		{"user without a password", nil, []string{"--user", "alice", "get", "k"}, result{2, "",
			"kvclient: --user alice needs --password-file, ECSKV_PASSWORD, or a terminal to ask at\n"}},
		{"missing password file", nil, []string{"--user", "alice", "--password-file", "/nonexistent/pw", "get", "k"}, result{2, "",
			"kvclient: config: invalid: password-file: cannot read \"/nonexistent/pw\": stat /nonexistent/pw: no such file or directory\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, runApp(t, tt.dialErr, "", tt.args...))
		})
	}
}

func TestPipedREPL(t *testing.T) {
	got := runApp(t, nil, "get k\nput k2 'x y'\nget nope\n")
	require.Equal(t, result{0, "v\nSUCCESS\nNOT_FOUND\n", ""}, got)

	got = runApp(t, nil, "get k\nfrobnicate\nget k\n")
	require.Equal(t, result{2, "v\nunknown command \"frobnicate\"; type help\nv\n", ""}, got)

	// The REPL starts without a cluster; only the commands that need it fail.
	got = runApp(t, errors.New("kvclient: cluster unavailable"), "help persist\nget k\n")
	require.Equal(t, result{2, "usage: persist KEY\nremove KEY's expiry, keeping its value; prints SUCCESS or NOT_FOUND\nERROR: cluster unavailable\n", ""}, got)
}

// TestPutValueSources: put takes its value byte for byte from standard
// input (-) or a file, and get --hex prints any value legibly.
func TestPutValueSources(t *testing.T) {
	c := &memClient{data: map[string]string{}}
	bin := "line one\nline\x00two \xff"
	require.Equal(t, result{0, "SUCCESS\n", ""}, runAppOn(t, c, nil, bin, "put", "in", "-"))
	require.Equal(t, bin, c.data["in"])
	f := filepath.Join(t.TempDir(), "v")
	require.NoError(t, os.WriteFile(f, []byte(bin+"!"), 0o600))
	require.Equal(t, result{0, "SUCCESS\n", ""}, runAppOn(t, c, nil, "", "put", "--value-file", f, "file"))
	require.Equal(t, bin+"!", c.data["file"])
	require.Equal(t, result{0, hex.EncodeToString([]byte(bin)) + "\n", ""}, runAppOn(t, c, nil, "", "get", "--hex", "in"))

	require.Equal(t, 2, runAppOn(t, c, nil, "", "put", "empty", "-").code, "an empty value is refused")
	require.Equal(t, 2, runAppOn(t, c, nil, "", "put", "--value-file", f, "k", "extra").code, "a file and words")
	require.Equal(t, 2, runAppOn(t, c, nil, "", "put", "--value-file", filepath.Join(t.TempDir(), "none"), "k").code)
	_, ok := c.data["empty"]
	require.False(t, ok)
}

// TestOneShotConditions: the conditional writes, counters and expiry
// commands print what the REPL prints; a failed condition exits 3 with
// its line on stdout, a missing key 1, a bad argument 2 before any call.
func TestOneShotConditions(t *testing.T) {
	const condFailed = "CONDITION_FAILED (current version 1)\n"
	tests := []struct {
		name string
		args []string
		want result
	}{
		{"put if absent fails", []string{"put", "--if-absent", "k", "w"}, result{3, condFailed, ""}},
		{"put if absent", []string{"put", "--if-absent", "new", "w"}, result{0, "SUCCESS\n", ""}},
		{"put if version", []string{"put", "--if-version", "1", "k", "w"}, result{0, "UPDATE\n", ""}},
		{"put if version fails", []string{"put", "--if-version=2", "k", "w"}, result{3, condFailed, ""}},
		{"put if version 0 on absent", []string{"put", "--if-version", "0", "new", "w"}, result{0, "SUCCESS\n", ""}},
		{"put if value", []string{"put", "--if-value", "v", "k", "w"}, result{0, "UPDATE\n", ""}},
		{"put if value absent", []string{"put", "--if-value", "v", "new", "w"}, result{3, "CONDITION_FAILED (the key is absent: version 0)\n", ""}},
		{"put two conditions", []string{"put", "--if-absent", "--if-version", "0", "k", "w"}, result{2, "", "kvclient: put: only one of --if-absent, --if-version and --if-value\n"}},
		{"put bad version", []string{"put", "--if-version", "x", "k", "w"}, result{2, "", "kvclient: invalid argument \"x\" for \"--if-version\" flag: strconv.ParseUint: parsing \"x\": invalid syntax\n"}},
		{"delete if version fails", []string{"delete", "--if-version", "7", "k"}, result{3, condFailed, ""}},
		{"delete if version", []string{"delete", "--if-version", "1", "k"}, result{0, "SUCCESS\n", ""}},
		{"delete if value", []string{"delete", "--if-value", "v", "k"}, result{0, "SUCCESS\n", ""}},
		{"delete if absent", []string{"delete", "--if-absent", "k"}, result{2, "", "kvclient: unknown flag: --if-absent\n"}},
		{"get meta", []string{"get", "--meta", "k"}, result{0, "v\n(version 1, no ttl)\n", ""}},
		{"get meta hex", []string{"get", "--hex", "--meta", "k"}, result{0, "76\n(version 1, no ttl)\n", ""}},
		{"cas", []string{"cas", "k", "v", "w"}, result{0, "UPDATE\n", ""}},
		{"cas fails", []string{"cas", "k", "x", "w"}, result{3, condFailed, ""}},
		{"cas values starting with -", []string{"cas", "k", "-x", "-w"}, result{3, condFailed, ""}},
		{"cas two args", []string{"cas", "k", "v"}, result{2, "", "kvclient: usage: cas KEY OLD NEW\n"}},
		{"incr", []string{"incr", "n"}, result{0, "1\n", ""}},
		{"incr negative", []string{"incr", "n", "-5"}, result{0, "-5\n", ""}},
		{"decr", []string{"decr", "n", "5"}, result{0, "-5\n", ""}},
		{"incr not an integer", []string{"incr", "k"}, result{2, "", "kvclient: value is not an integer\n"}},
		{"incr bad delta", []string{"incr", "n", "x"}, result{2, "", "kvclient: incr: DELTA must be an integer from -9223372036854775808 to 9223372036854775807, got \"x\"\n"}},
		{"expire", []string{"expire", "k", "30s"}, result{0, "SUCCESS\n", ""}},
		{"expire missing", []string{"expire", "x", "30s"}, result{1, "NOT_FOUND\n", ""}},
		{"expire bad", []string{"expire", "k", "0s"}, result{2, "", "kvclient: expire: DURATION must be at least 1ms, got 0s\n"}},
		{"persist", []string{"persist", "k"}, result{0, "SUCCESS\n", ""}},
		{"ttl", []string{"ttl", "k"}, result{0, "no ttl\n", ""}},
		{"ttl missing", []string{"ttl", "x"}, result{1, "", "NOT_FOUND\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &memClient{data: map[string]string{"k": "v"}}
			require.Equal(t, tt.want, runAppOn(t, c, nil, "", tt.args...))
			if tt.want.code != 0 {
				require.Equal(t, map[string]string{"k": "v"}, c.data, "a refused command changes nothing")
			}
		})
	}
}

// TestPutValueSourceCondition: a value from standard input takes the
// condition too.
func TestPutValueSourceCondition(t *testing.T) {
	c := &memClient{data: map[string]string{"k": "v"}}
	require.Equal(t, result{3, "CONDITION_FAILED (current version 1)\n", ""}, runAppOn(t, c, nil, "w", "put", "--if-absent", "k", "-"))
	require.Equal(t, result{0, "UPDATE\n", ""}, runAppOn(t, c, nil, "w", "put", "--if-value", "v", "k", "-"))
	require.Equal(t, "w", c.data["k"])
}
