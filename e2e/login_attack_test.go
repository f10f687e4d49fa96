//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestLoginAttacks runs the login attacks a client of the cluster can
// mount against other users, from addresses of its own (127.0.0.0/8 is
// all loopback): wrong passwords for a real user, and a flood of unknown
// names from 30 addresses. The real users, logging in from 127.0.0.1,
// are served within 2 s throughout; what a refusal echoes is bounded.
func TestLoginAttacks(t *testing.T) {
	c := framework.NewCluster(t, framework.WithServers(1), framework.WithReplicas(1), framework.WithArgs("--auth"))
	for _, u := range []string{"alice", "bob"} {
		res := c.AdminInput(t, u+"-pw\n", "user", "add", u)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	addr := c.ServerAddr("s1")
	real := loginClient(t, addr, "127.0.0.1")

	// attack runs n attackers, attacker i logging in from 127.0.0.(10+i)
	// with user(i, try), until the returned stop is called; it returns
	// once the attack is under way, every attacker has tried twice.
	attack := func(t *testing.T, n int, user func(i, try int) string, pw string) (stop func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		tries := 0
		for i := range n {
			cli := loginClient(t, addr, fmt.Sprintf("127.0.0.%d", 10+i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; ctx.Err() == nil; try++ {
					_, _ = cli.Login(ctx, &kvpb.LoginRequest{User: user(i, try), Password: pw})
					mu.Lock()
					tries++
					mu.Unlock()
				}
			}()
		}
		testutil.Eventually(t, 30*time.Second, 10*time.Millisecond, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return tries >= 2*n
		}, "the attack does not get going")
		return func() int { cancel(); wg.Wait(); return tries }
	}
	// realLogins logs user in every 200 ms for d, each within 2 s.
	realLogins := func(t *testing.T, user string, d time.Duration) int {
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			resp, err := real.Login(ctx, &kvpb.LoginRequest{User: user, Password: user + "-pw"})
			cancel()
			require.NoError(t, err, "login %d of the real %s, after %v", n, user, time.Since(start).Round(time.Millisecond))
			require.NotEmpty(t, resp.Token)
			time.Sleep(200 * time.Millisecond)
		}
		return n
	}

	t.Run("wrong passwords for bob from elsewhere do not lock bob out", func(t *testing.T) {
		stop := attack(t, 4, func(int, int) string { return "bob" }, "guess")
		n := realLogins(t, "bob", 6*time.Second)
		t.Logf("bob logged in %d times during %d guesses", n, stop())
	})

	t.Run("a flood of unknown names does not starve real logins", func(t *testing.T) {
		stop := attack(t, 30, func(i, try int) string { return fmt.Sprintf("nobody-%d-%d", i, try) }, "pw")
		n := realLogins(t, "alice", 6*time.Second)
		t.Logf("alice logged in %d times during %d flood logins", n, stop())
	})

	t.Run("a refusal echoes a bounded part of the name", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := loginClient(t, addr, "127.0.0.200").Login(ctx, &kvpb.LoginRequest{User: strings.Repeat("x", 100_000), Password: "pw"})
		require.Error(t, err)
		msg := status.Convert(err).Message()
		require.Less(t, len(msg), 400, "error message: %.500s", msg)
		require.Contains(t, msg, "100000 bytes")
	})
}

// loginClient is a KV client of addr whose connections come from local
// address from.
func loginClient(t *testing.T, addr, from string) kvpb.KVClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return kvpb.NewKVClient(conn)
}
