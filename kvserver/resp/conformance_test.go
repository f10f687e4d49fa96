package resp

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
)

// startRedis runs a redis-server without persistence on a free port, or
// skips the test when there is none (`make peer-tools` installs it).
func startRedis(t *testing.T) string {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (make peer-tools installs it)")
	}
	port := strconv.Itoa(testutil.FreePort(t))
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + port
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, "redis-server listens")
	return addr
}

// rawAnswer reads one answer's bytes as they came.
func rawAnswer(c *conn) string {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	require.NoError(c.t, err)
	n, _ := strconv.Atoi(strings.TrimSuffix(line[1:], "\r\n"))
	switch {
	case line[0] == '$' && n >= 0:
		return line + c.read(n+2)
	case line[0] == '*' && n > 0:
		for range n {
			line += rawAnswer(c)
		}
	}
	return line
}

// TestConformance sends the same requests to a real redis-server and to
// the front door and requires the same bytes back: the error texts
// clients match on, word for word. The differences ecskv means to have
// (one database, strings only, KEEPTTL) are left out.
func TestConformance(t *testing.T) {
	redisAddr := startRedis(t)
	s := startServer(t, newMemCluster(), nil)
	rc, err := net.Dial("tcp", redisAddr)
	require.NoError(t, err)
	defer rc.Close()
	_ = rc.SetDeadline(time.Now().Add(10 * time.Second))
	theirs, ours := &conn{t: t, c: rc, r: bufio.NewReader(rc)}, dial(t, s)
	for _, r := range [][]string{
		{"GET"}, {"GET", "a", "b"}, {"FOO"}, {"foo", "a", "b c"}, {"GET", "k"},
		{"SET", "k", "v", "NX", "XX"}, {"SET", "k", "v", "EX", "x"}, {"SET", "k", "v", "EX", "0"}, {"SET", "k", "v", "PX", "-5"},
		{"SET", "k", "v", "EX", "9223372036854775807"}, {"SET", "k", "v", "FOO"}, {"SET", "k", "v", "EX"},
		{"SET", "k", "v", "EX", "10", "PX", "5"}, {"SET", "k", "abc"}, {"INCR", "k"}, {"INCRBY", "k", "x"},
		{"INCRBY", "n", "1.5"}, {"DECRBY", "n", "-9223372036854775808"}, {"INCRBY", "n", "7"}, {"DECR", "n"},
		{"SET", "m", "9223372036854775807"}, {"INCR", "m"}, {"DECRBY", "m", "-1"},
		{"SELECT", "0"}, {"SELECT", "x"}, {"SELECT", "99999999999"},
		{"HELLO", "4"}, {"HELLO", "x"}, {"HELLO", "3", "FOO"}, {"HELLO", "3", "AUTH", "u"},
		{"AUTH", "pw"}, {"AUTH", "alice", "pw"}, {"AUTH", "a", "b", "c"},
		{"CLIENT", "NOPE"}, {"CLIENT"}, {"CLIENT", "SETNAME"}, {"CLIENT", "SETNAME", "a b"}, {"CLIENT", "GETNAME"},
		{"CLIENT", "SETNAME", "app"}, {"CLIENT", "GETNAME"},
		{"EXPIRE", "k", "x"}, {"EXPIRE", "k", "10", "FOO"}, {"EXPIRE", "k", "9223372036854775807"}, {"EXPIRE", "nokey", "10"},
		{"TTL", "k"}, {"EXPIRE", "k", "100", "XX"}, {"EXPIRE", "k", "100", "NX"}, {"EXPIRE", "k", "100"}, {"TTL", "k"},
		{"EXPIRE", "k", "50", "GT"}, {"EXPIRE", "k", "150", "GT"}, {"EXPIRE", "k", "200", "LT"}, {"EXPIRE", "k", "100", "XX", "LT"}, {"TTL", "k"},
		{"EXPIRE", "k", "10", "NX", "XX"}, {"EXPIRE", "k", "10", "GT", "LT"}, {"PEXPIRE", "k", "10", "NX", "NX", "FOO"}, {"EXPIRE", "k", "x", "FOO"}, {"PERSIST", "k"}, {"PERSIST", "k"}, {"PTTL", "k"},
		{"SETEX", "e", "0", "v"}, {"PSETEX", "e", "-1", "v"}, {"SETEX", "e", "x", "v"},
		{"SCAN", "x"}, {"SCAN", "0", "COUNT", "0"}, {"SCAN", "0", "COUNT", "x"}, {"SCAN", "0", "MATCH"}, {"SCAN", "0", "FOO", "x"},
		{"MSET", "a", "1", "b"}, {"MSET", "a", "1", "b", "2"}, {"MGET", "a", "nokey", "b"}, {"EXISTS", "a", "b", "nokey", "a"},
		{"DEL", "a", "nokey"}, {"PING", "a", "b"}, {"PING"}, {"PING", "x"}, {"ECHO"}, {"TTL", "nokey"},
		{"SET", "k3", "v", "GET", "NX"}, {"SET", "k3", "w", "GET"}, {"SETNX", "k3", "z"}, {"SET", "k3", "x", "EX", "50"}, {"SET", "k3", "w", "KEEPTTL"}, {"TTL", "k3"},
		{"SET", "k3", "w", "KEEPTTL", "EX", "1"}, {"SET", "k3", "w", "EX", "1", "KEEPTTL"}, {"GETSET", "k3", "y"}, {"GETSET", "k4", "y"}, {"STRLEN", "k3"}, {"TYPE", "k3"}, {"TYPE", "nokey"},
		{"CONFIG", "GET", "save"}, {"CONFIG", "GET", "appendonly"}, {"CONFIG", "NOPE"}, {"CLUSTER", "NOPE"}, {"EXISTS"}, {"DEL"}, {"MGET"},
	} {
		theirs.send(cmd(r...))
		ours.send(cmd(r...))
		require.Equal(t, rawAnswer(theirs), rawAnswer(ours), "%q", r)
	}
}

// TestConformanceProtocol: the same protocol errors as redis-server, and
// the connection closed after them. (Where Redis is lenient, the front
// door refuses: a bulk not followed by CRLF, an inline request over 64 KiB
// that arrives whole.)
func TestConformanceProtocol(t *testing.T) {
	redisAddr := startRedis(t)
	s := startServer(t, newMemCluster(), nil)
	for _, raw := range []string{
		"*1\r\n$-1\r\n", "*x\r\n", "*1\r\n:1\r\n", "SET x \"abc\r\n", "SET x \"abc\"d\r\n", "*1\r\n\r\n",
		"*3\r\n$3\r\nfoo\r\n$320\r\n" + strings.Repeat("abcdefgh", 40) + "\r\n$1\r\nb\r\n",
		"*1\r\n$01\r\na\r\n", "*1\r\n$4\r\nPING\r\n*1\r\n$999999999999\r\n", "*0\r\n\r\n",
	} {
		raw += cmd("QUIT") // ends the connection when nothing broke it
		rc, err := net.Dial("tcp", redisAddr)
		require.NoError(t, err)
		_ = rc.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = rc.Write([]byte(raw))
		require.NoError(t, err)
		want, _ := io.ReadAll(rc) // a reset may follow the answer
		_ = rc.Close()
		c := dial(t, s)
		c.send(raw)
		got, _ := io.ReadAll(c.r)
		require.Equal(t, string(want), string(got), "%q", raw)
	}
}
