// Package frontdoor holds what the servers' optional listeners (the DHT
// API, the Redis protocol) share.
package frontdoor

import (
	"context"
	"errors"
	"net"
	"time"

	"go.uber.org/zap"
)

// AcceptLoop accepts connections from lis until it is closed and hands each
// to handle. A failed Accept (out of file descriptors and the like) is
// retried after a growing pause, as net/http does, until ctx ends.
func AcceptLoop(ctx context.Context, lis net.Listener, lg *zap.Logger, handle func(net.Conn)) {
	backoff := 5 * time.Millisecond
	for {
		c, err := lis.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			lg.Warn("accept", zap.Error(err))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		handle(c)
	}
}
