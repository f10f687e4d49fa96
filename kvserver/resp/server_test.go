package resp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T, c Cluster, mut func(*Config)) *Server {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", ServerID: "s1", MaxConnections: 16, IdleTimeout: time.Minute,
		RequestTimeout: 5 * time.Second, MaxBulkBytes: 1 << 20, MaxRequestBytes: 4 << 20}
	if mut != nil {
		mut(&cfg)
	}
	s := New(cfg, c, zap.NewNop(), NewMetrics(prometheus.NewRegistry()))
	require.NoError(t, s.Start())
	t.Cleanup(s.Stop)
	return s
}

// conn is a raw client connection.
type conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, s *Server) *conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *conn) send(raw string) {
	c.t.Helper()
	_, err := c.c.Write([]byte(raw))
	require.NoError(c.t, err)
}

// cmd encodes args as a multibulk request.
func cmd(args ...string) string {
	w := replies{}
	w.strings(args)
	return string(w.b)
}

// read reads exactly n bytes of answer.
func (c *conn) read(n int) string {
	c.t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(c.r, b)
	require.NoError(c.t, err, "read %d bytes, got %q", n, b)
	return string(b)
}

// expect sends raw and checks the answer is exactly want.
func (c *conn) expect(raw, want string) {
	c.t.Helper()
	c.send(raw)
	require.Equal(c.t, want, c.read(len(want)), "answer to %q", raw)
}

// reply reads one answer: a string (simple or bulk), an int64, nil, an
// error or []any.
func (c *conn) reply() any {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	require.NoError(c.t, err)
	line = strings.TrimSuffix(line, "\r\n")
	n, _ := strconv.Atoi(line[1:])
	switch line[0] {
	case '+':
		return line[1:]
	case '-':
		return errors.New(line[1:])
	case ':':
		return int64(n)
	case '_':
		return nil
	case '$', '=':
		if n < 0 {
			return nil
		}
		return c.read(n + 2)[:n]
	case '*', '~':
		if n < 0 {
			return nil
		}
		out := make([]any, n)
		for i := range out {
			out[i] = c.reply()
		}
		return out
	}
	c.t.Fatalf("unknown answer %q", line)
	return nil
}

// requireClosed: the server closed the connection after the answers
// already read.
func (c *conn) requireClosed() {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	require.NoError(c.t, err)
	require.Empty(c.t, string(b))
}

// step is one request and its exact answer.
type step struct{ req, want string }

func runSteps(t *testing.T, c *conn, steps []step) {
	t.Helper()
	for _, s := range steps {
		c.expect(s.req, s.want)
	}
}

const (
	ok   = "+OK\r\n"
	nil2 = "$-1\r\n"
)

func bulk(s string) string { return "$" + itoa(len(s)) + "\r\n" + s + "\r\n" }

func itoa(n int) string {
	w := replies{}
	w.int(int64(n))
	return strings.TrimSuffix(strings.TrimPrefix(string(w.b), ":"), "\r\n")
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"ping", []step{
			{cmd("PING"), "+PONG\r\n"},
			{cmd("ping", "hi"), bulk("hi")},
			{cmd("PING", "a", "b"), "-ERR wrong number of arguments for 'ping' command\r\n"},
			{cmd("ECHO", "x y"), bulk("x y")},
		}},
		{"inline", []step{
			{"PING\r\n", "+PONG\r\n"},
			{"set a \"b c\\x41\\n\"\n", ok},
			{"GET a\r\n", bulk("b cA\n")},
			{"\r\n   \r\nget 'a'\r\n", bulk("b cA\n")},
		}},
		{"set get", []step{
			{cmd("GET", "k"), nil2},
			{cmd("SET", "k", "v"), ok},
			{cmd("GET", "k"), bulk("v")},
			{cmd("SET", "k", ""), ok},
			{cmd("GET", "k"), "$0\r\n\r\n"},
			{cmd("SET", "k", "v2", "NX"), nil2},
			{cmd("SET", "n", "v", "XX"), nil2},
			{cmd("SET", "k", "v3", "XX", "GET"), bulk("")},
			{cmd("SET", "k", "v4", "NX", "GET"), bulk("v3")},
			{cmd("SET", "new", "v", "GET"), nil2},
			{cmd("SET", "k", "v", "NX", "XX"), "-ERR syntax error\r\n"},
			{cmd("SET", "k", "v", "EX", "10", "PX", "5"), "-ERR syntax error\r\n"},
			{cmd("SET", "k", "v", "EX"), "-ERR syntax error\r\n"},
			{cmd("SET", "k", "v", "EX", "x"), "-ERR value is not an integer or out of range\r\n"},
			{cmd("SET", "k", "v", "EX", "0"), "-ERR invalid expire time in 'set' command\r\n"},
			{cmd("SET", "k", "v", "PX", "-5"), "-ERR invalid expire time in 'set' command\r\n"},
			{cmd("SET", "k", "v", "EX", "9223372036854775807"), "-ERR invalid expire time in 'set' command\r\n"},
			{cmd("SET", "k", "v", "FOO"), "-ERR syntax error\r\n"},
			{cmd("GET", "k"), bulk("v3")},
			{cmd("SET", "k"), "-ERR wrong number of arguments for 'set' command\r\n"},
			{cmd("GET"), "-ERR wrong number of arguments for 'get' command\r\n"},
			{cmd("SETNX", "k", "x"), ":0\r\n"},
			{cmd("SETNX", "k2", "x"), ":1\r\n"},
			{cmd("STRLEN", "k2"), ":1\r\n"},
			{cmd("STRLEN", "nope"), ":0\r\n"},
			{cmd("TYPE", "k2"), "+string\r\n"},
			{cmd("TYPE", "nope"), "+none\r\n"},
		}},
		{"del exists", []step{
			{cmd("MSET", "a", "1", "b", "2", "c", "3"), ok},
			{cmd("EXISTS", "a", "b", "x", "a"), ":3\r\n"},
			{cmd("DEL", "a", "b", "x"), ":2\r\n"},
			{cmd("EXISTS", "a", "b", "c"), ":1\r\n"},
			{cmd("UNLINK", "c"), ":1\r\n"},
			{cmd("DEL"), "-ERR wrong number of arguments for 'del' command\r\n"},
			{cmd("MSET", "a", "1", "b"), "-ERR wrong number of arguments for 'mset' command\r\n"},
			{cmd("MSET", "a", "1", "b", "2"), ok},
			{cmd("MGET", "a", "x", "b"), "*3\r\n" + bulk("1") + nil2 + bulk("2")},
		}},
		{"incr", []step{
			{cmd("INCR", "n"), ":1\r\n"},
			{cmd("INCRBY", "n", "10"), ":11\r\n"},
			{cmd("DECR", "n"), ":10\r\n"},
			{cmd("DECRBY", "n", "-5"), ":15\r\n"},
			{cmd("INCRBY", "n", "x"), "-ERR value is not an integer or out of range\r\n"},
			{cmd("INCRBY", "n", "1.5"), "-ERR value is not an integer or out of range\r\n"},
			{cmd("DECRBY", "n", "-9223372036854775808"), "-ERR decrement would overflow\r\n"},
			{cmd("SET", "s", "abc"), ok},
			{cmd("INCR", "s"), "-ERR value is not an integer or out of range\r\n"},
			{cmd("SET", "m", "9223372036854775807"), ok},
			{cmd("INCR", "m"), "-ERR increment or decrement would overflow\r\n"},
			{cmd("GET", "m"), bulk("9223372036854775807")},
		}},
		{"expire ttl", []step{
			{cmd("TTL", "k"), ":-2\r\n"},
			{cmd("PTTL", "k"), ":-2\r\n"},
			{cmd("EXPIRE", "k", "10"), ":0\r\n"},
			{cmd("SET", "k", "v"), ok},
			{cmd("TTL", "k"), ":-1\r\n"},
			{cmd("EXPIRE", "k", "100"), ":1\r\n"},
			{cmd("TTL", "k"), ":100\r\n"},
			{cmd("PERSIST", "k"), ":1\r\n"},
			{cmd("PERSIST", "k"), ":0\r\n"},
			{cmd("PERSIST", "nope"), ":0\r\n"},
			{cmd("TTL", "k"), ":-1\r\n"},
			{cmd("EXPIRE", "k", "x"), "-ERR value is not an integer or out of range\r\n"},
			{cmd("EXPIRE", "k", "10", "NX"), ":1\r\n"},
			{cmd("EXPIRE", "k", "20", "NX"), ":0\r\n"},
			{cmd("EXPIRE", "k", "5", "GT"), ":0\r\n"},
			{cmd("EXPIRE", "k", "50", "GT"), ":1\r\n"},
			{cmd("EXPIRE", "k", "60", "LT"), ":0\r\n"},
			{cmd("EXPIRE", "k", "40", "XX", "LT"), ":1\r\n"},
			{cmd("TTL", "k"), ":40\r\n"},
			{cmd("GET", "k"), bulk("v")},
			{cmd("PERSIST", "k"), ":1\r\n"},
			{cmd("EXPIRE", "k", "40", "XX"), ":0\r\n"},
			{cmd("EXPIRE", "k", "40", "GT"), ":0\r\n"},
			{cmd("EXPIRE", "k", "40", "LT"), ":1\r\n"},
			{cmd("PERSIST", "k"), ":1\r\n"},
			{cmd("EXPIRE", "nokey", "40", "NX"), ":0\r\n"},
			{cmd("EXPIRE", "k", "10", "NX", "XX"), "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
			{cmd("EXPIRE", "k", "10", "GT", "LT"), "-ERR GT and LT options at the same time are not compatible\r\n"},
			{cmd("EXPIRE", "k", "10", "FOO"), "-ERR Unsupported option FOO\r\n"},
			{cmd("EXPIRE", "k", "9223372036854775807"), "-ERR invalid expire time in 'expire' command\r\n"},
			{cmd("SETEX", "e", "100", "v"), ok},
			{cmd("TTL", "e"), ":100\r\n"},
			{cmd("SETEX", "e", "0", "v"), "-ERR invalid expire time in 'setex' command\r\n"},
			{cmd("SET", "e", "v2", "KEEPTTL"), ok},
			{cmd("TTL", "e"), ":100\r\n"},
			{cmd("SET", "e", "v3", "KEEPTTL", "GET", "XX"), bulk("v2")},
			{cmd("TTL", "e"), ":100\r\n"},
			{cmd("SET", "e", "v4", "KEEPTTL", "NX"), nil2},
			{cmd("SET", "f", "v", "KEEPTTL", "XX"), nil2},
			{cmd("SET", "f", "v", "KEEPTTL"), ok},
			{cmd("TTL", "f"), ":-1\r\n"},
			{cmd("SET", "e", "v", "KEEPTTL", "EX", "5"), "-ERR syntax error\r\n"},
			{cmd("SET", "e", "v", "PX", "5", "KEEPTTL"), "-ERR syntax error\r\n"},
			{cmd("GET", "e"), bulk("v3")},
			{cmd("PEXPIRE", "k", "0"), ":1\r\n"},
			{cmd("GET", "k"), nil2},
		}},
		{"select", []step{
			{cmd("SELECT", "0"), ok},
			{cmd("SELECT", "1"), "-ERR DB index is out of range\r\n"},
			{cmd("SELECT", "x"), "-ERR value is not an integer or out of range\r\n"},
		}},
		{"unknown", []step{
			{cmd("FOO"), "-ERR unknown command 'FOO', with args beginning with: \r\n"},
			{cmd("foo", "a", "b c"), "-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n"},
			{cmd("HGET", "h", "f"), "-ERR unknown command 'HGET', with args beginning with: 'h' 'f' \r\n"},
			{cmd("CLIENT", "NOPE"), "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"},
			{cmd("CONFIG", "HELP"), "*3\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+GET\r\n+HELP\r\n"},
			{cmd("CLIENT"), "-ERR wrong number of arguments for 'client' command\r\n"},
			{cmd("CLIENT", "SETNAME"), "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		}},
		{"client", []step{
			{cmd("CLIENT", "GETNAME"), nil2},
			{cmd("CLIENT", "SETNAME", "app-1"), ok},
			{cmd("CLIENT", "GETNAME"), bulk("app-1")},
			{cmd("CLIENT", "SETNAME", "a b"), "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
			{cmd("CLIENT", "SETINFO", "LIB-NAME", "go-redis"), ok},
			{cmd("CLIENT", "SETINFO", "nope", "x"), "-ERR Unrecognized option 'nope'\r\n"},
			{cmd("READONLY"), ok},
			{cmd("READWRITE"), ok},
			{cmd("CONFIG", "GET", "save", "appendonly"), "*4\r\n" + bulk("save") + bulk("") + bulk("appendonly") + bulk("no")},
			{cmd("CONFIG", "GET", "nope"), "*0\r\n"},
		}},
		{"hello", []step{
			{cmd("HELLO", "4"), "-NOPROTO unsupported protocol version\r\n"},
			{cmd("HELLO", "x"), "-ERR Protocol version is not an integer or out of range\r\n"},
			{cmd("HELLO", "3", "FOO"), "-ERR Syntax error in HELLO option 'FOO'\r\n"},
			{cmd("HELLO", "3", "AUTH", "u", "p"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{cmd("HELLO", "3", "SETNAME", "n"), "%7\r\n" + bulk("server") + bulk("redis") + bulk("version") + bulk(RedisVersion) +
				bulk("proto") + ":3\r\n" + bulk("id") + ":1\r\n" + bulk("mode") + bulk("cluster") +
				bulk("role") + bulk("master") + bulk("modules") + "*0\r\n"},
			{cmd("GET", "nope"), "_\r\n"},
			{cmd("CLIENT", "GETNAME"), bulk("n")},
			{cmd("CONFIG", "GET", "save"), "%1\r\n" + bulk("save") + bulk("")},
			{cmd("HELLO", "2"), "*14\r\n" + bulk("server") + bulk("redis") + bulk("version") + bulk(RedisVersion) +
				bulk("proto") + ":2\r\n" + bulk("id") + ":1\r\n" + bulk("mode") + bulk("cluster") +
				bulk("role") + bulk("master") + bulk("modules") + "*0\r\n"},
			{cmd("GET", "nope"), nil2},
		}},
		{"auth without users", []step{
			{cmd("AUTH", "pw"), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"},
			{cmd("AUTH", "default", "pw"), ok},
			{cmd("AUTH", "alice", "pw"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
			{cmd("AUTH", "a", "b", "c"), "-ERR syntax error\r\n"},
		}},
		{"command", []step{
			{cmd("COMMAND", "COUNT"), ":" + itoa(len(commands)) + "\r\n"},
			{cmd("COMMAND", "INFO", "get", "nope"), "*2\r\n*10\r\n" + bulk("get") + ":2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n" + nil2},
			{cmd("COMMAND", "DOCS"), "*0\r\n"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, newMemCluster(), nil)
			runSteps(t, dial(t, s), tt.steps)
		})
	}
}

// TestKeepTTLRace: a write that lands between SET KEEPTTL's read and its
// put makes the put fail its version condition and start over, so the TTL
// kept is the one of the value it replaces.
func TestKeepTTLRace(t *testing.T) {
	mc := newMemCluster()
	b := mc.space("")
	s := startServer(t, mc, nil)
	c := dial(t, s)
	c.expect(cmd("SET", "k", "v", "EX", "100"), ok)
	raced := false
	b.beforeSet = func() {
		if !raced {
			raced = true
			_, err := b.Set(t.Context(), "k", []byte("other"), SetOptions{TTL: 500 * time.Second})
			require.NoError(t, err)
		}
	}
	c.expect(cmd("SET", "k", "mine", "KEEPTTL", "GET"), bulk("other"))
	c.expect(cmd("TTL", "k"), ":500\r\n")
}

func TestQuit(t *testing.T) {
	s := startServer(t, newMemCluster(), nil)
	c := dial(t, s)
	c.expect(cmd("SET", "a", "1")+cmd("QUIT")+cmd("SET", "b", "2"), ok+ok)
	c.requireClosed()
	_, err := s.cluster.Anonymous().Get(t.Context(), "b")
	require.ErrorIs(t, err, ErrNotFound, "nothing after QUIT runs")
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeQuit)))
}

// TestPipelined: many commands in one write, inline and multibulk mixed,
// answered in order.
func TestPipelined(t *testing.T) {
	s := startServer(t, newMemCluster(), nil)
	c := dial(t, s)
	var req, want strings.Builder
	for i := range 500 {
		k, v := "k"+itoa(i%7), "v"+itoa(i)
		if i%2 == 0 {
			req.WriteString(cmd("SET", k, v))
		} else {
			req.WriteString("SET " + k + " " + v + "\r\n")
		}
		req.WriteString(cmd("GET", k))
		want.WriteString(ok + bulk(v))
	}
	go c.send(req.String())
	require.Equal(t, want.String(), c.read(want.Len()))
	require.Equal(t, 500.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues("get", resultOK)))
}

// TestProtocolErrors: a request that breaks the format or the size bounds
// gets Redis's error, after the answers before it, then the connection
// closes; nothing of it applies.
func TestProtocolErrors(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"bulk over the bound", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over the cluster's value limit", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1001\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"request over the bound", strings.Repeat("*1\r\n$0\r\n\r\n", 0) + "*5\r\n$3\r\nSET\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"negative bulk", "*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bad multibulk length", "*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"too many arguments", "*1048577\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"not a bulk", "*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"unbalanced quotes", "SET x \"abc\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"inline too long", strings.Repeat("a", 70000) + "\r\n", "-ERR Protocol error: too big inline request\r\n"},
		{"bulk without its CRLF", "*1\r\n$1\r\naXY", "-ERR Protocol error: invalid bulk length\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := newMemCluster()
			mc.maxArg = 1000
			s := startServer(t, mc, func(c *Config) { c.MaxRequestBytes = 3500 })
			c := dial(t, s)
			c.expect(cmd("SET", "before", "1")+tt.raw, ok+tt.want)
			c.requireClosed()
			_, err := mc.Anonymous().Get(t.Context(), "x")
			require.ErrorIs(t, err, ErrNotFound)
			require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeProtocol)))
		})
	}
}

// TestAuth: with users, key commands wait for AUTH; each user has a
// keyspace of their own, and a connection's login ends with it.
func TestAuth(t *testing.T) {
	mc := newMemCluster()
	mc.passwords["alice"], mc.passwords["bob"] = "alice-pw", "bob-pw"
	s := startServer(t, mc, nil)
	a, b := dial(t, s), dial(t, s)
	runSteps(t, a, []step{
		{cmd("GET", "k"), "-NOAUTH Authentication required.\r\n"},
		{cmd("PING"), "-NOAUTH Authentication required.\r\n"},
		{cmd("NOPE"), "-ERR unknown command 'NOPE', with args beginning with: \r\n"},
		{cmd("HELLO", "3"), "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
		{cmd("AUTH", "alice", "wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{cmd("AUTH", "alice-pw"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{cmd("AUTH", "alice", "alice-pw"), ok},
		{cmd("SET", "k", "alice's"), ok},
		{cmd("GET", "k"), bulk("alice's")},
	})
	runSteps(t, b, []step{
		{"*11\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
	})
	b.requireClosed()
	b = dial(t, s)
	runSteps(t, b, []step{
		{cmd("HELLO", "2", "AUTH", "bob", "bob-pw"), "*14\r\n"},
	})
	b.read(len(bulk("server") + bulk("redis") + bulk("version") + bulk(RedisVersion) + bulk("proto") + ":2\r\n" + bulk("id")))
	_, _ = b.r.ReadString('\n')
	b.read(len(bulk("mode") + bulk("cluster") + bulk("role") + bulk("master") + bulk("modules") + "*0\r\n"))
	runSteps(t, b, []step{
		{cmd("GET", "k"), nil2},
		{cmd("SET", "k", "bob's"), ok},
		{cmd("AUTH", "alice", "alice-pw"), ok},
		{cmd("GET", "k"), bulk("alice's")},
	})
	_, err := mc.Anonymous().Get(t.Context(), "k")
	require.ErrorIs(t, err, ErrNotFound, "no key without a login")
	_ = a.c.Close()
	_ = b.c.Close()
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.released == mc.logins && mc.logins == 3
	}, "every login is released")
}

func TestScan(t *testing.T) {
	mc := newMemCluster()
	s := startServer(t, mc, nil)
	c := dial(t, s)
	for i := range 25 {
		c.expect(cmd("SET", "user:"+itoa(i), "v"), ok)
	}
	c.expect(cmd("SET", "other", "v"), ok)
	seen := map[string]bool{}
	cursor := "0"
	for range 10 {
		c.send(cmd("SCAN", cursor, "MATCH", "user:1*", "COUNT", "4"))
		page := c.reply().([]any)
		cursor = page[0].(string)
		for _, k := range page[1].([]any) {
			seen[k.(string)] = true
		}
		if cursor == "0" {
			break
		}
	}
	require.Equal(t, "0", cursor, "the scan ends")
	require.Len(t, seen, 11, "user:1 and user:10..19: %v", seen)
	runSteps(t, c, []step{
		{cmd("SCAN", "99"), "-ERR invalid cursor\r\n"},
		{cmd("SCAN", "x"), "-ERR invalid cursor\r\n"},
		{cmd("SCAN", "0", "COUNT", "0"), "-ERR syntax error\r\n"},
		{cmd("SCAN", "0", "COUNT", "x"), "-ERR value is not an integer or out of range\r\n"},
		{cmd("SCAN", "0", "MATCH"), "-ERR syntax error\r\n"},
		{cmd("SCAN", "0", "MATCH", "other", "TYPE", "hash"), "*2\r\n" + bulk("0") + "*0\r\n"},
		{cmd("SCAN", "0", "MATCH", "other", "TYPE", "string"), "*2\r\n" + bulk("0") + "*1\r\n" + bulk("other")},
	})
}

func TestCluster(t *testing.T) {
	s := startServer(t, newMemCluster(), nil)
	c := dial(t, s)
	host, port, err := net.SplitHostPort(s.Addr().String())
	require.NoError(t, err)
	id := s.nodeID()
	require.Len(t, id, 40)
	runSteps(t, c, []step{
		{cmd("CLUSTER", "SLOTS"), "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n" + bulk(host) + ":" + port + "\r\n" + bulk(id) + "*0\r\n"},
		{cmd("CLUSTER", "MYID"), bulk(id)},
		{cmd("CLUSTER", "NODES"), bulk(id + " " + host + ":" + port + "@" + port + " myself,master - 0 0 1 connected 0-16383\n")},
		{cmd("CLUSTER", "FOO"), "-ERR unknown subcommand 'FOO'. Try CLUSTER HELP.\r\n"},
	})
	c.send(cmd("CLUSTER", "INFO"))
	require.Contains(t, c.reply(), "cluster_state:ok\r\n")
	c.send(cmd("INFO", "server"))
	body := c.reply().(string)
	require.Contains(t, body, "# Server\r\nredis_version:"+RedisVersion+"\r\n")
	require.NotContains(t, body, "# Clients")
}

func TestMaxConnections(t *testing.T) {
	s := startServer(t, newMemCluster(), func(c *Config) { c.MaxConnections = 2 })
	a, b := dial(t, s), dial(t, s)
	a.expect(cmd("PING"), "+PONG\r\n")
	b.expect(cmd("PING"), "+PONG\r\n")
	c := dial(t, s)
	require.Equal(t, "-ERR max number of clients reached\r\n", c.read(36))
	c.requireClosed()
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeMaxConns)))
	_ = a.c.Close()
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		c := dial(t, s)
		c.send(cmd("PING"))
		l, err := c.r.ReadString('\n')
		return err == nil && l == "+PONG\r\n"
	}, "a slot frees when a connection closes")
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, newMemCluster(), func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	c := dial(t, s)
	c.expect(cmd("PING"), "+PONG\r\n")
	c.requireClosed()
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeIdle)))
}

// TestRequestTimeout: a command the cluster does not answer in time gets
// an error, and the connection goes on.
func TestRequestTimeout(t *testing.T) {
	mc := newMemCluster()
	mc.space("").gate = make(chan struct{}) // never opens
	s := startServer(t, mc, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	c := dial(t, s)
	c.expect(cmd("GET", "k"), "-ERR ecskv: the cluster did not answer within 20ms\r\n")
	c.expect(cmd("PING"), "+PONG\r\n")
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues("get", resultError)))
}

// TestStop ends commands in flight and closes the connections.
func TestStop(t *testing.T) {
	mc := newMemCluster()
	mc.space("").gate = make(chan struct{})
	s := startServer(t, mc, nil)
	c := dial(t, s)
	c.send(cmd("GET", "k"))
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return s.connCount() == 1 })
	s.Stop()
	// The end, or a reset when Stop closed the connection before the
	// server read the GET.
	_, err := io.ReadAll(c.r)
	if err != nil {
		require.ErrorContains(t, err, "connection reset")
	}
	_, err = net.Dial("tcp", s.Addr().String())
	require.Error(t, err, "the listener is closed")
}
