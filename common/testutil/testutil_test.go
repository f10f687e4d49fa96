package testutil

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper()                        {}
func (f *fatalTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }

func TestEventually(t *testing.T) {
	tests := []struct {
		name      string
		trueAfter int // calls before cond holds; -1: never
		msg       []any
		wantFatal string
	}{
		{name: "at once", trueAfter: 0},
		{name: "after polls", trueAfter: 3},
		{name: "never, no message", trueAfter: -1, wantFatal: "not true within 50ms: condition not met"},
		{name: "never, formatted", trueAfter: -1, msg: []any{"key %q at %d", "k", 7},
			wantFatal: `not true within 50ms: key "k" at 7`},
		{name: "never, no format", trueAfter: -1, msg: []any{42}, wantFatal: "not true within 50ms: 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			cond := func() bool { calls++; return tt.trueAfter >= 0 && calls > tt.trueAfter }
			ft := &fatalTB{TB: t}
			Eventually(ft, 50*time.Millisecond, time.Millisecond, cond, tt.msg...)
			require.Equal(t, tt.wantFatal, ft.fatal)
			if tt.trueAfter >= 0 {
				require.Equal(t, tt.trueAfter+1, calls, "no call after cond held")
			}
		})
	}
}

func TestWaitUntilChecksAtDeadline(t *testing.T) {
	deadline := time.Now().Add(30 * time.Millisecond)
	// The interval outlasts the timeout: only the last call sees cond hold.
	ok := WaitUntil(30*time.Millisecond, time.Hour, func() bool { return !time.Now().Before(deadline) })
	require.True(t, ok)
}

func TestReservePorts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	given := FreePort(t)
	fresh := func() int { // free, and not yet handed out
		p, err := kernelPort()
		require.NoError(t, err)
		return p
	}

	tests := []struct {
		name  string
		ports func() []int
		want  bool
		// firstFree: ports[0] is still free to reserve afterwards
		firstFree bool
	}{
		{name: "free port", ports: func() []int { return []int{fresh()} }, want: true},
		{name: "handed out before", ports: func() []int { return []int{given} }},
		{name: "in use", ports: func() []int { return []int{busyPort} }},
		{name: "out of range", ports: func() []int { return []int{0} }},
		{name: "all or none", ports: func() []int { return []int{fresh(), given} }, firstFree: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ports := tt.ports()
			require.Equal(t, tt.want, ReservePorts(ports...))
			if tt.firstFree {
				require.True(t, ReservePorts(ports[0]), "a refused reservation claims nothing")
			}
		})
	}
}

// kernelPort is a free port the registry has not seen.
func kernelPort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		portsMu.Lock()
		seen := handedOut[p]
		portsMu.Unlock()
		if !seen {
			return p, nil
		}
	}
}

func TestFreePortsNeverHandedOutTwice(t *testing.T) {
	seen := map[int]bool{}
	take := func(p int) {
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
	for range 50 {
		take(FreePort(t))
		first := FreePortRange(t, 3)
		for i := range 3 {
			take(first + i)
		}
		_, port, err := net.SplitHostPort(FreeAddr(t))
		require.NoError(t, err)
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		take(p)
	}
}

func TestStartEtcd(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "certs")
	_, err := tlsutil.InitDir(certs, tlsutil.DirSpec{ECSHosts: []string{"127.0.0.1"}, Validity: time.Hour})
	require.NoError(t, err)
	tests := []struct {
		name string
		opts []EtcdOption
	}{
		{name: "plaintext"},
		{name: "tls", opts: []EtcdOption{WithEtcdTLS(tlsutil.DirFiles(certs, tlsutil.ECSName))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, eps := StartEtcd(t, tt.opts...)
			require.Len(t, eps, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := cli.Put(ctx, "k", "v")
			require.NoError(t, err)
			resp, err := cli.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, "v", string(resp.Kvs[0].Value))
		})
	}
}
