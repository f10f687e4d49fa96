//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/e2e/framework"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// history records, with the time this test saw them, every ring the ECS
// publishes (through an etcd watch) and the test's own actions (kills,
// restarts), so that a lost write can be explained: which chains its
// partition had around the time it was acknowledged.
type history struct {
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex // guards the fields below
	last   []ringmeta.Chain
	events []historyEvent
	epochs int
}

type historyEvent struct {
	at        time.Time
	epoch     uint64
	partition int // -1: a test action or a ring-wide note
	chain     ringmeta.Chain
	note      string
}

// recordHistory starts watching the cluster's ring; t.Cleanup stops it.
func recordHistory(t *testing.T, c *framework.Cluster) *history {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.EtcdEndpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &history{cli: cli, cancel: cancel, done: make(chan struct{})}
	key := etcdkeys.Ring("default")
	resp, err := cli.Get(ctx, key)
	if err != nil {
		cancel()
		cli.Close()
		t.Fatalf("etcd get %s: %v", key, err)
	}
	for _, kv := range resp.Kvs {
		h.apply(kv.Value)
	}
	wch := cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		defer close(h.done)
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					h.apply(ev.Kv.Value)
				}
			}
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *history) stop() {
	h.cancel()
	<-h.done
	_ = h.cli.Close()
}

func (h *history) apply(b []byte) {
	r, err := ringmeta.Unmarshal(b)
	if err != nil {
		return
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epochs++
	for p, ch := range r.Chains {
		if p < len(h.last) && slices.Equal(h.last[p].Members, ch.Members) && h.last[p].Learner == ch.Learner && h.last[p].Version == ch.Version {
			continue
		}
		h.events = append(h.events, historyEvent{at: now, epoch: r.Epoch, partition: p, chain: ch})
	}
	var down []string
	for _, s := range r.Servers {
		if s.State != ringmeta.StateActive {
			down = append(down, s.ID+"="+string(s.State))
		}
	}
	h.events = append(h.events, historyEvent{at: now, epoch: r.Epoch, partition: -1, note: fmt.Sprintf("ring epoch %d, not active: %v", r.Epoch, down)})
	h.last = slices.Clone(r.Chains)
}

// note records a test action.
func (h *history) note(format string, args ...any) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, historyEvent{at: time.Now(), partition: -1, note: fmt.Sprintf(format, args...)})
}

// explain returns partition p's chain changes and the test's actions from
// before to after, one per line.
func (h *history) explain(p int, from, to time.Time) string {
	if h == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, ev := range h.events {
		if ev.at.Before(from) || ev.at.After(to) {
			continue
		}
		switch {
		case ev.partition == p:
			fmt.Fprintf(&b, "  %s epoch %d: partition %d chain %v v%d learner %q\n", ev.at.Format("15:04:05.000"), ev.epoch, p, ev.chain.Members, ev.chain.Version, ev.chain.Learner)
		case ev.partition < 0 && !strings.HasPrefix(ev.note, "ring epoch"):
			fmt.Fprintf(&b, "  %s test: %s\n", ev.at.Format("15:04:05.000"), ev.note)
		}
	}
	return b.String()
}

// chainAt returns partition p's chain as last recorded at or before at.
func (h *history) chainAt(p int, at time.Time) (ringmeta.Chain, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ch ringmeta.Chain
	var epoch uint64
	for _, ev := range h.events {
		if ev.at.After(at) {
			break
		}
		if ev.partition == p {
			ch, epoch = ev.chain, ev.epoch
		}
	}
	return ch, epoch
}

// explainLast returns partition p's last n chain changes and the test's
// actions since the first of them.
func (h *history) explainLast(p, n int) string {
	if h == nil {
		return ""
	}
	h.mu.Lock()
	var from time.Time
	seen := 0
	for i := len(h.events) - 1; i >= 0 && seen < n; i-- {
		if h.events[i].partition == p {
			from = h.events[i].at
			seen++
		}
	}
	h.mu.Unlock()
	return h.explain(p, from, time.Now())
}
