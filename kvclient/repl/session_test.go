package repl

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// fakeClient is an in-memory Client; err, when set, fails every call.
type fakeClient struct {
	data   map[string]string
	err    error
	closed bool
	user   string // logged in as
}

func newFake() *fakeClient { return &fakeClient{data: map[string]string{}} }

func (f *fakeClient) Put(_ context.Context, key string, value []byte, _ ...kvclient.OpOption) (kvclient.PutResult, error) {
	if f.err != nil {
		return 0, f.err
	}
	_, ok := f.data[key]
	f.data[key] = string(value)
	if ok {
		return kvclient.Updated, nil
	}
	return kvclient.Created, nil
}

func (f *fakeClient) Get(_ context.Context, key string, _ ...kvclient.OpOption) ([]byte, error) {
	v, ok := f.data[key]
	if f.err != nil || !ok {
		return nil, errors.Join(f.err, kvclient.ErrNotFound)
	}
	return []byte(v), nil
}

func (f *fakeClient) Delete(_ context.Context, key string, _ ...kvclient.OpOption) error {
	if _, ok := f.data[key]; !ok || f.err != nil {
		return errors.Join(f.err, kvclient.ErrNotFound)
	}
	delete(f.data, key)
	return nil
}

func (f *fakeClient) KeyRange(context.Context) (string, error) {
	return "00000000000000000000000000000000,7fffffffffffffffffffffffffffffff,127.0.0.1:5001;80000000000000000000000000000000,ffffffffffffffffffffffffffffffff,127.0.0.1:5002;", f.err
}
func (f *fakeClient) KeyRangeRead(context.Context) (string, error) {
	return "00000000000000000000000000000000,ffffffffffffffffffffffffffffffff,127.0.0.1:5002;", f.err
}
func (f *fakeClient) Close() error { f.closed = true; return nil }

// Login accepts password "<user>-pw".
func (f *fakeClient) Login(_ context.Context, user, password string) error {
	if password != user+"-pw" {
		return kvclient.ErrUnauthenticated
	}
	f.user = user
	return nil
}
func (f *fakeClient) Logout() { f.user = "" }

// fakeDialer records the configurations it dials; err fails the dial.
type fakeDialer struct {
	client *fakeClient
	dialed []config.Client
	err    error
}

func (d *fakeDialer) dial(_ context.Context, cfg config.Client) (Client, error) {
	d.dialed = append(d.dialed, cfg)
	if d.err != nil {
		return nil, d.err
	}
	return d.client, nil
}

func newTestSession(t *testing.T) (*Session, *fakeDialer, *bytes.Buffer) {
	t.Helper()
	d := &fakeDialer{client: newFake()}
	var out bytes.Buffer
	s := NewSession(config.DefaultClient(), d.dial, &out)
	t.Cleanup(func() { _ = s.Close() })
	return s, d, &out
}

// runLines parses and runs each line and returns what was printed.
func runLines(t *testing.T, s *Session, out *bytes.Buffer, lines ...string) string {
	t.Helper()
	out.Reset()
	for _, l := range lines {
		cmd, err := Parse(l)
		require.NoError(t, err, l)
		_ = s.Run(context.Background(), cmd)
	}
	return out.String()
}

func TestSessionKeyCommands(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"put new then update", []string{"put k v", "put k w x"}, "SUCCESS\nUPDATE\n"},
		{"get", []string{"put k a  b", "get k"}, "SUCCESS\na b\n"},
		{"get empty value", []string{`put k ""`, "get k"}, "SUCCESS\n\n"},
		{"get missing", []string{"get nope"}, "NOT_FOUND\n"},
		{"delete", []string{"put k v", "delete k", "delete k", "get k"}, "SUCCESS\nSUCCESS\nNOT_FOUND\nNOT_FOUND\n"},
		{"put without a value deletes", []string{"put k v", "put k", "get k", "put k null", `put k "null"`, "get k", "put k null", "get k"},
			"SUCCESS\nSUCCESS\nNOT_FOUND\nNOT_FOUND\nSUCCESS\nnull\nSUCCESS\nNOT_FOUND\n"},
		{"keyrange", []string{"keyrange", "keyrange_read --raw", "keyrange --table"},
			"SERVER          RANGES  SHARE\n127.0.0.1:5001  1       50.0%\n127.0.0.1:5002  1       50.0%\n2 ranges on 2 servers (--table lists them, --raw prints the ECE419 string)\n" +
				"00000000000000000000000000000000,ffffffffffffffffffffffffffffffff,127.0.0.1:5002;\n" +
				"START                             END                               SERVER\n" +
				"00000000000000000000000000000000  7fffffffffffffffffffffffffffffff  127.0.0.1:5001\n80000000000000000000000000000000  ffffffffffffffffffffffffffffffff  127.0.0.1:5002\n"},
		{"login without a password source", []string{"login alice", "logout"},
			"ERROR: login needs a terminal to ask for the password, or --password-file or ECSKV_PASSWORD\nlogged out\n"},
		{"blank", []string{"", "# note"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, out := newTestSession(t)
			require.Equal(t, tt.want, runLines(t, s, out, tt.lines...))
		})
	}
}

func TestSessionErrors(t *testing.T) {
	s, d, out := newTestSession(t)
	d.client.err = errors.New("kvclient: cluster unavailable: a\nb")
	require.Equal(t, "ERROR: cluster unavailable: a; b\n", runLines(t, s, out, "put k v"))

	err := s.Run(context.Background(), Command{Name: "keyrange"})
	require.ErrorIs(t, err, d.client.err)

	// A hand-made Command is checked like a parsed one.
	out.Reset()
	err = s.Run(context.Background(), Command{Name: "get"})
	require.ErrorIs(t, err, ErrParse)
	require.Equal(t, "usage: get KEY\n", out.String())
}

func TestSessionDialsLazily(t *testing.T) {
	s, d, out := newTestSession(t)
	runLines(t, s, out, "help", "logout", "logLevel info")
	require.Empty(t, d.dialed, "non-key commands must not dial")

	d.err = errors.New("kvclient: read ring from etcd: context deadline exceeded")
	require.Equal(t, "ERROR: read ring from etcd: context deadline exceeded\n", runLines(t, s, out, "get k"))
	d.err = nil
	require.Equal(t, "NOT_FOUND\n", runLines(t, s, out, "get k"))
	require.Len(t, d.dialed, 2, "a failed dial is retried by the next command")
}

func TestSessionConnect(t *testing.T) {
	s, d, out := newTestSession(t)
	require.Equal(t, "connected to 127.0.0.1:5001\n", runLines(t, s, out, "connect 127.0.0.1 5001"))
	require.Equal(t, []string{"127.0.0.1:5001"}, d.dialed[0].Servers)

	require.Equal(t, "disconnected\nERROR: not connected; type connect [HOST:PORT]\n",
		runLines(t, s, out, "disconnect", "get k"))
	require.True(t, d.client.closed)

	require.Equal(t, "connected to etcd 127.0.0.1:2379\n", runLines(t, s, out, "connect"))
	require.Empty(t, d.dialed[1].Servers, "connect without an address returns to the startup config")

	d.err = errors.New("kvclient: no server gave a ring")
	require.Equal(t, "ERROR: no server gave a ring\n", runLines(t, s, out, "connect 10.0.0.1:1"))
	require.Equal(t, "10.0.0.1:1", s.Target(), "the new target stays after a failed dial")
}

func TestSessionLogLevel(t *testing.T) {
	s, _, out := newTestSession(t)
	require.Equal(t, "ERROR: this session cannot change its log level\n", runLines(t, s, out, "logLevel info"))

	var got string
	s = NewSession(config.DefaultClient(), (&fakeDialer{}).dial, out, WithLogLevel(func(l string) error {
		got = l
		return nil
	}))
	require.Equal(t, "log level: debug\n", runLines(t, s, out, "logLevel DEBUG"))
	require.Equal(t, "debug", got)
}

func TestSessionPutTTL(t *testing.T) {
	s, d, out := newTestSession(t)
	spy := &optSpy{fakeClient: d.client}
	s.dial = func(context.Context, config.Client) (Client, error) { return spy, nil }
	require.Equal(t, "SUCCESS\nUPDATE\n", runLines(t, s, out, "put --ttl 1m k v", "put k v"))
	// kvclient's options are opaque; a TTL put passes one, a plain put none.
	require.Equal(t, []int{1, 0}, spy.opts)
}

// optSpy records how many options each put was given.
type optSpy struct {
	*fakeClient
	opts []int
}

func (c *optSpy) Put(ctx context.Context, key string, value []byte, opts ...kvclient.OpOption) (kvclient.PutResult, error) {
	c.opts = append(c.opts, len(opts))
	return c.fakeClient.Put(ctx, key, value)
}

func TestLoop(t *testing.T) {
	s, _, out := newTestSession(t)
	in := NewLineReader(strings.NewReader("put k v\r\nbogus\nget k\n\nquit\nget k\n"))
	failed, err := Loop{In: in, Session: s}.Run(context.Background())
	require.NoError(t, err)
	require.True(t, failed)
	require.Equal(t, "SUCCESS\nunknown command \"bogus\"; type help\nv\n", out.String())

	out.Reset()
	in = NewLineReader(strings.NewReader("get missing\nput k 'last line'"))
	failed, err = Loop{In: in, Session: s}.Run(context.Background())
	require.NoError(t, err)
	require.False(t, failed, "NOT_FOUND is not a failure")
	require.Equal(t, "NOT_FOUND\nUPDATE\n", out.String())
}

func TestSessionLogin(t *testing.T) {
	d := &fakeDialer{client: newFake()}
	var out bytes.Buffer
	var asked []string
	s := NewSession(config.DefaultClient(), d.dial, &out, WithPassword(func(user string) (string, error) {
		asked = append(asked, user)
		return user + "-pw", nil
	}))
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, "logged in as alice\n", runLines(t, s, &out, "login alice"))
	require.Equal(t, []string{"alice"}, asked)
	require.Equal(t, "alice", d.client.user)

	require.Equal(t, "connected to 127.0.0.1:5009\n", runLines(t, s, &out, "connect 127.0.0.1:5009"))
	require.Equal(t, "alice", d.dialed[len(d.dialed)-1].User, "a new connection logs in as the same user")

	require.Equal(t, "logged out\n", runLines(t, s, &out, "logout"))
	require.Empty(t, d.client.user)

	t.Run("wrong password", func(t *testing.T) {
		s := NewSession(config.DefaultClient(), d.dial, &out, WithPassword(func(string) (string, error) { return "nope", nil }))
		t.Cleanup(func() { _ = s.Close() })
		require.Equal(t, "ERROR: not authenticated\n", runLines(t, s, &out, "login bob"))
	})
	t.Run("password from the configuration", func(t *testing.T) {
		cfg := config.DefaultClient()
		cfg.Password = "carol-pw"
		s := NewSession(cfg, d.dial, &out)
		t.Cleanup(func() { _ = s.Close() })
		require.Equal(t, "logged in as carol\n", runLines(t, s, &out, "login carol"))
	})
}

// Scan returns pages of at most two keys in key order; the cursor is the
// last key returned.
func (f *fakeClient) Scan(_ context.Context, prefix, cursor string, limit int, opts ...kvclient.OpOption) ([]kvclient.KV, string, error) {
	if f.err != nil {
		return nil, cursor, f.err
	}
	var keys []string
	for k := range f.data {
		if strings.HasPrefix(k, prefix) && k > cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	n := min(len(keys), 2, limit)
	var out []kvclient.KV
	for _, k := range keys[:n] {
		out = append(out, kvclient.KV{Key: k, Value: []byte(f.data[k])})
	}
	if n == len(keys) {
		return out, "", nil
	}
	return out, keys[n-1], nil
}

func TestSessionScan(t *testing.T) {
	f := newFake()
	for _, k := range []string{"a1", "a2", "a 3", "b1", "a4"} {
		f.data[k] = "v-" + k
	}
	d := &fakeDialer{client: f}
	for _, tc := range []struct{ line, want string }{
		{"scan", "\"a 3\" v-a 3\na1 v-a1\na2 v-a2\na4 v-a4\nb1 v-b1\n(5 keys)\n"},
		{"scan --prefix a --keys-only", "\"a 3\"\na1\na2\na4\n(4 keys)\n"},
		{"scan --prefix=a --limit 3", "\"a 3\" v-a 3\na1 v-a1\na2 v-a2\n(3 keys; more with --cursor=a2)\n"},
		{"scan --cursor=a2 --limit=1 --prefix=a", "a4 v-a4\n(1 key)\n"},
		{"scan --limit x", "scan: --limit wants a number of keys >= 0 (0: all), got \"x\"\n"},
		{"scan --sort", "scan: unknown option \"--sort\"; usage: scan [--prefix P] [--limit N] [--keys-only] [--cursor C]\n"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			var out bytes.Buffer
			s := NewSession(config.DefaultClient(), d.dial, &out)
			cmd, err := Parse(tc.line)
			if err == nil {
				again, perr := Parse(cmd.String())
				require.NoError(t, perr)
				require.Equal(t, cmd, again, "String parses back")
				_ = s.Run(context.Background(), cmd)
			} else {
				out.WriteString(err.Error() + "\n")
			}
			require.Equal(t, tc.want, out.String())
		})
	}
}
