package ecs

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/ecs/opclient"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkIDsFree refuses a start whose local servers s1..sN are already
// served by running processes: registered under a live lease and answering
// their incarnation's health probe. Records of dead incarnations (a
// restart after a crash, before their leases ran out) do not count.
func (s *Server) checkIDsFree(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.cli.Get(ctx, etcdkeys.ServersPrefix(s.cfg.Cluster), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("ecs: read members: %w", err)
	}
	mine := map[string]bool{}
	for i := 1; i <= s.cfg.Servers; i++ {
		mine["s"+strconv.Itoa(i)] = true
	}
	dial := healthDialer(s.creds)
	var (
		mu   sync.Mutex
		live []etcdkeys.Member
		wg   sync.WaitGroup
	)
	for _, kv := range resp.Kvs {
		m, err := etcdkeys.UnmarshalMember(kv.Value)
		if err != nil || !mine[m.ID] || m.Addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := dial(m.Addr, m.Incarnation)
			if err != nil {
				return
			}
			defer h.close()
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			defer pcancel()
			if h.check(pctx) == nil {
				mu.Lock()
				live = append(live, m)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(live) == 0 {
		return nil
	}
	slices.SortFunc(live, func(a, b etcdkeys.Member) int { return opclient.CompareIDs(a.ID, b.ID) })
	m, more := live[0], ""
	if len(live) > 1 {
		more = fmt.Sprintf(" (and %d more of s1..s%d)", len(live)-1, s.cfg.Servers)
	}
	return fmt.Errorf("%w: %s is served by a running process at %s (pid %d) in cluster %q%s; add servers to a running cluster with `ecs add`, or use another --cluster or --etcd-endpoints",
		ErrServerIDLive, m.ID, m.Addr, m.PID, s.cfg.Cluster, more)
}
