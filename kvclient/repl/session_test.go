package repl

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// fakeClient is an in-memory Client; err, when set, fails every call. It
// honours conditions, WithMeta and TTLs (kvclient.ReadOptions) with a
// version per key: the count of writes so far.
type fakeClient struct {
	data   map[string]string
	vers   map[string]uint64
	ttls   map[string]time.Duration
	writes uint64
	err    error
	closed bool
	user   string // logged in as
}

func newFake() *fakeClient {
	return &fakeClient{data: map[string]string{}, vers: map[string]uint64{}, ttls: map[string]time.Duration{}}
}

// check applies o's condition to key and fills o's Meta as the library
// does for a failed condition.
func (f *fakeClient) check(key string, o kvclient.CallOptions) error {
	v, ok := f.data[key]
	if o.Meta != nil {
		*o.Meta = kvclient.Meta{Version: f.vers[key], TTL: f.ttls[key], Existed: ok}
	}
	if o.Cond == nil {
		return nil
	}
	var holds bool
	switch o.Cond.Kind {
	case kvpb.Condition_ABSENT:
		holds = !ok
	case kvpb.Condition_EXISTS:
		holds = ok
	case kvpb.Condition_VALUE:
		holds = ok && v == string(o.Cond.Value)
	case kvpb.Condition_VERSION:
		holds = f.vers[key] == o.Cond.Version
	}
	if !holds {
		return kvclient.ErrConditionFailed
	}
	return nil
}

// write stores value (nil: deletes) under key with a new version.
func (f *fakeClient) write(key string, value *string, ttl time.Duration) {
	f.writes++
	if value == nil {
		delete(f.data, key)
		delete(f.vers, key)
		delete(f.ttls, key)
		return
	}
	f.data[key], f.vers[key], f.ttls[key] = *value, f.writes, ttl
}

func (f *fakeClient) Put(_ context.Context, key string, value []byte, opts ...kvclient.OpOption) (kvclient.PutResult, error) {
	if f.err != nil {
		return 0, f.err
	}
	o := kvclient.ReadOptions(opts...)
	if err := f.check(key, o); err != nil {
		return 0, err
	}
	_, ok := f.data[key]
	v := string(value)
	f.write(key, &v, o.TTL)
	if ok {
		return kvclient.Updated, nil
	}
	return kvclient.Created, nil
}

func (f *fakeClient) Get(_ context.Context, key string, opts ...kvclient.OpOption) ([]byte, error) {
	v, ok := f.data[key]
	if f.err != nil || !ok {
		return nil, errors.Join(f.err, kvclient.ErrNotFound)
	}
	_ = f.check(key, kvclient.ReadOptions(opts...))
	return []byte(v), nil
}

func (f *fakeClient) Delete(_ context.Context, key string, opts ...kvclient.OpOption) error {
	if f.err != nil {
		return f.err
	}
	if err := f.check(key, kvclient.ReadOptions(opts...)); err != nil {
		return err
	}
	if _, ok := f.data[key]; !ok {
		return kvclient.ErrNotFound
	}
	f.write(key, nil, 0)
	return nil
}

func (f *fakeClient) Incr(_ context.Context, key string, delta int64, _ ...kvclient.OpOption) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	var n int64
	if v, ok := f.data[key]; ok {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, kvclient.ErrNotInteger
		}
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, kvclient.ErrOverflow
	}
	v := strconv.FormatInt(n+delta, 10)
	f.write(key, &v, f.ttls[key])
	return n + delta, nil
}

func (f *fakeClient) Expire(_ context.Context, key string, ttl time.Duration) error {
	if f.err != nil {
		return f.err
	}
	v, ok := f.data[key]
	if !ok {
		return kvclient.ErrNotFound
	}
	f.write(key, &v, ttl)
	return nil
}

func (f *fakeClient) Persist(ctx context.Context, key string) error { return f.Expire(ctx, key, 0) }

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
	require.Equal(t, "usage: get [--meta] KEY\n", out.String())
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

// TestSessionConditions: conditional writes, counters and expiry print as
// put, get and delete do, and a failed condition prints the key's current
// version and changes nothing. The fake's versions count its writes.
func TestSessionConditions(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"put if absent", []string{"put --if-absent k v", "put --if-absent k w", "get k"},
			"SUCCESS\nCONDITION_FAILED (current version 1)\nv\n"},
		{"put if version", []string{"put k v", "put --if-version 1 k w", "put --if-version 1 k x", "get --meta k"},
			"SUCCESS\nUPDATE\nCONDITION_FAILED (current version 2)\nw\n(version 2, no ttl)\n"},
		{"put if version 0 is if absent", []string{"put --if-version 0 k v", "put --if-version 0 k w"},
			"SUCCESS\nCONDITION_FAILED (current version 1)\n"},
		{"put if value", []string{"put k 'a b'", `put --if-value "a b" k c`, "put --if-value 'a b' k d", "get k"},
			"SUCCESS\nUPDATE\nCONDITION_FAILED (current version 2)\nc\n"},
		{"put if value on an absent key", []string{"put --if-value x k v", "get k"},
			"CONDITION_FAILED (the key is absent: version 0)\nNOT_FOUND\n"},
		{"delete if version", []string{"put k v", "delete --if-version 9 k", "get k", "delete --if-version 1 k", "get k"},
			"SUCCESS\nCONDITION_FAILED (current version 1)\nv\nSUCCESS\nNOT_FOUND\n"},
		{"delete if value", []string{"put k v", "delete --if-value w k", "delete --if-value v k"},
			"SUCCESS\nCONDITION_FAILED (current version 1)\nSUCCESS\n"},
		{"cas", []string{"put k old", "cas k old new", "cas k old newer", "get k", "cas missing a b"},
			"SUCCESS\nUPDATE\nCONDITION_FAILED (current version 2)\nnew\nCONDITION_FAILED (the key is absent: version 0)\n"},
		{"incr and decr", []string{"incr n", "incr n 10", "decr n", "decr n 20", "incr n -1", "get n"},
			"1\n11\n10\n-10\n-11\n-11\n"},
		{"incr errors change nothing", []string{"put s abc", "incr s", "get s", "put m 9223372036854775807", "incr m", "decr m", "get --meta m"},
			"SUCCESS\nERROR: value is not an integer\nabc\nSUCCESS\nERROR: increment would overflow\n9223372036854775806\n9223372036854775806\n(version 3, no ttl)\n"},
		{"expire persist ttl", []string{"put k v", "ttl k", "expire k 1m", "ttl k", "get --meta k", "persist k", "ttl k", "get k"},
			"SUCCESS\nno ttl\nSUCCESS\n1m0s\nv\n(version 2, ttl 1m0s)\nSUCCESS\nno ttl\nv\n"},
		{"put ttl shows", []string{"put --ttl 90s k v", "ttl k"}, "SUCCESS\n1m30s\n"},
		{"missing keys", []string{"expire k 1s", "persist k", "ttl k", "get --meta k"}, "NOT_FOUND\nNOT_FOUND\nNOT_FOUND\nNOT_FOUND\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, out := newTestSession(t)
			require.Equal(t, tt.want, runLines(t, s, out, tt.lines...))
		})
	}
}

func TestSessionConditionFailedIsAnAnswer(t *testing.T) {
	s, _, out := newTestSession(t)
	in := NewLineReader(strings.NewReader("put k v\nput --if-absent k w\nincr k\n"))
	failed, err := Loop{In: in, Session: s}.Run(context.Background())
	require.NoError(t, err)
	require.True(t, failed, "incr of a non-integer is an error")
	require.Equal(t, "SUCCESS\nCONDITION_FAILED (current version 1)\nERROR: value is not an integer\n", out.String())

	in = NewLineReader(strings.NewReader("put --if-absent k w\n"))
	failed, err = Loop{In: in, Session: s}.Run(context.Background())
	require.NoError(t, err)
	require.False(t, failed, "CONDITION_FAILED is an answer, like NOT_FOUND")

	_, err = s.Do(context.Background(), Command{Name: "put", Args: []string{"k", "x"}, Cond: Cond{Kind: CondVersion, Version: 5}})
	require.ErrorIs(t, err, kvclient.ErrConditionFailed)
	require.Equal(t, "CONDITION_FAILED (current version 1)", ConditionLine(err))
}

// TestSessionRefusesMisplacedOptions: a Command built by hand with an
// option its command does not take is refused before any call.
func TestSessionRefusesMisplacedOptions(t *testing.T) {
	s, d, _ := newTestSession(t)
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{Command{Name: "get", Args: []string{"k"}, Cond: Cond{Kind: CondVersion}}, "get: conditions are put's and delete's options"},
		{Command{Name: "delete", Args: []string{"k"}, Cond: Cond{Kind: CondAbsent}}, "delete: --if-absent is put's option"},
		{Command{Name: "put", Args: []string{"k", "v"}, Meta: true}, "put: --meta is get's option"},
		{Command{Name: "incr", Args: []string{"k"}, TTL: time.Second}, "incr: --ttl is put's option"},
		{Command{Name: "put", Args: []string{"k", "v"}, Cond: Cond{Kind: 9}}, "put: unknown condition"},
	} {
		_, err := s.Do(context.Background(), tc.cmd)
		require.ErrorIs(t, err, ErrParse)
		require.EqualError(t, err, tc.want)
	}
	require.Empty(t, d.client.data, "nothing was written")
	require.Empty(t, d.dialed, "nothing was called")
}
