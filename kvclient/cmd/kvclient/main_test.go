package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/ecskv/ecskv/kvclient/repl"
	"github.com/stretchr/testify/require"
)

// memClient is an in-memory repl.Client holding one key, "k" = "v".
type memClient struct{ data map[string]string }

func (m *memClient) Put(_ context.Context, key string, value []byte, _ ...kvclient.OpOption) (kvclient.PutResult, error) {
	_, ok := m.data[key]
	m.data[key] = string(value)
	if ok {
		return kvclient.Updated, nil
	}
	return kvclient.Created, nil
}

func (m *memClient) Get(_ context.Context, key string, _ ...kvclient.OpOption) ([]byte, error) {
	v, ok := m.data[key]
	if !ok {
		return nil, kvclient.ErrNotFound
	}
	return []byte(v), nil
}

func (m *memClient) Login(context.Context, string, string) error { return nil }
func (m *memClient) Logout()                                     {}

func (m *memClient) Delete(_ context.Context, key string, _ ...kvclient.OpOption) error {
	if _, ok := m.data[key]; !ok {
		return kvclient.ErrNotFound
	}
	delete(m.data, key)
	return nil
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
		{"put without a value", nil, []string{"put", "k"}, result{2, "", "kvclient: usage: put [--ttl DURATION] KEY VALUE...\n"}},
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
		{"usage", nil, []string{"get"}, result{2, "", "kvclient: usage: get KEY\n"}},
		{"unknown command", nil, []string{"connect", "x"}, result{2, "",
			"kvclient: unknown command \"connect\"; want put, get, delete, scan, keyrange or keyrange_read (none starts the REPL)\n"}},
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
	got = runApp(t, errors.New("kvclient: cluster unavailable"), "help get\nget k\n")
	require.Equal(t, result{2, "usage: get KEY\nprint KEY's value, or NOT_FOUND\nERROR: cluster unavailable\n", ""}, got)
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
