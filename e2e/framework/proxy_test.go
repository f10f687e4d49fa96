package framework

import (
	"bufio"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(l)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and waits up to d for the echo.
func roundTrip(c net.Conn, d time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func TestProxyFaults(t *testing.T) {
	n := NewNetwork()
	n.SetPID(os.Getpid(), "me")
	p, err := n.Proxy(0, "srv", "", echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, roundTrip(c, 2*time.Second), "pass")

	t.Run("attributed to this process", func(t *testing.T) {
		n.Set("other", "srv", Fault{Kind: Blackhole})
		require.NoError(t, roundTrip(c, 2*time.Second), "a fault of another node does not apply")
		n.Set("other", "srv", Fault{})
	})
	t.Run("blackhole holds bytes until healed", func(t *testing.T) {
		n.Set("me", "srv", Fault{Kind: Blackhole})
		require.Error(t, roundTrip(c, 200*time.Millisecond))
		n.Heal()
		// The held ping and its echo arrive after the heal.
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
	})
	t.Run("delay", func(t *testing.T) {
		n.Set(Any, "srv", Fault{Kind: Delay, Delay: 100 * time.Millisecond})
		began := time.Now()
		require.NoError(t, roundTrip(c, 2*time.Second))
		require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "both directions delayed")
		n.Heal()
	})
	t.Run("drop resets open and new connections", func(t *testing.T) {
		n.Set("me", Any, Fault{Kind: Drop})
		require.Error(t, roundTrip(c, 2*time.Second))
		// A new connection is reset at once: the dial itself may see it.
		if c2, err := net.Dial("tcp", p.Addr()); err == nil {
			defer c2.Close()
			require.Error(t, roundTrip(c2, 2*time.Second))
		} else {
			require.ErrorIs(t, err, syscall.ECONNRESET)
		}
		n.Heal()
		c3, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		defer c3.Close()
		require.NoError(t, roundTrip(c3, 2*time.Second))
	})
}
