package ecs

import (
	"context"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/ecs/opclient"
	"go.uber.org/zap"
)

// measureTimeout bounds the Digest calls that size one batch of promotions.
const measureTimeout = 5 * time.Second

// measure estimates the data the promoted learners copied: it asks each new
// tail for its partitions' key counts, off the controller goroutine, and
// sends the total back on c.sizes. It is only an estimate for the progress
// display, so failures are logged and counted as zero.
func (c *controller) measure(ctx context.Context, promoted []partKey) {
	if len(promoted) == 0 {
		return
	}
	byServer := map[string][]uint32{}
	addrs := map[string]string{}
	for _, k := range promoted {
		if m, ok := c.members[k.id]; ok {
			byServer[k.id] = append(byServer[k.id], uint32(k.p))
			addrs[k.id] = m.Addr
		}
	}
	dial := c.adminDial
	if dial == nil {
		dial = opclient.DialAdmin
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, measureTimeout)
		defer cancel()
		var keys uint64
		for id, parts := range byServer {
			keys += c.keysOf(ctx, dial, id, addrs[id], parts)
		}
		select {
		case c.sizes <- keys:
		case <-ctx.Done():
		}
	}()
}

func (c *controller) keysOf(ctx context.Context, dial opclient.AdminDialer, id, addr string, parts []uint32) uint64 {
	ac, closer, err := dial(addr)
	if err != nil {
		return 0
	}
	defer closer.Close()
	resp, err := ac.Digest(ctx, &kvpb.DigestRequest{Partitions: parts})
	if err != nil {
		c.lg.Debug("size of moved partitions", zap.String("id", id), zap.Error(err))
		return 0
	}
	var keys uint64
	for _, d := range resp.GetPartitions() {
		keys += d.GetKeys()
	}
	return keys
}
