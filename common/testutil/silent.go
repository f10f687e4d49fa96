package testutil

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// HoldSilent is an attacker of the connection bounds: it keeps one TCP
// connection to addr open that never sends a byte, reopening it as soon as
// the server closes it, until ctx ends. opened counts the connections made.
func HoldSilent(ctx context.Context, addr string, opened *atomic.Int64) {
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			select { // the backlog is full: try again shortly
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
			continue
		}
		opened.Add(1)
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		_, _ = io.Copy(io.Discard, conn) // until the server closes it
		stop()
		_ = conn.Close()
	}
}
