package kvserver

import (
	"context"
	"os"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// registerLoop keeps servers/<id> alive under a lease. When the lease is lost
// (etcd unreachable longer than the TTL) it registers again with a new one.
// It rewrites the record whenever the adopted ring epoch changes, which is
// how the ECS learns that a server serves the ring it published.
func (s *Server) registerLoop() {
	member := etcdkeys.Member{
		ID: s.cfg.ID, Addr: s.cfg.Advertise, Zone: s.cfg.Zone, Metrics: s.cfg.Metrics,
		PID: os.Getpid(), StartUnixMs: s.started.UnixMilli(), Incarnation: s.incarnation(),
	}
	key := etcdkeys.Server(s.cfg.Cluster, s.cfg.ID)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		lease, err := s.register(key, &member)
		if err == nil {
			backoff = 100 * time.Millisecond
			err = s.keepRegistered(key, &member, lease)
		}
		if s.ctx.Err() != nil {
			return
		}
		s.lg.Warn("membership lease lost; registering again", zap.Error(err))
		if !s.sleepCtx(backoff) {
			return
		}
	}
}

func (s *Server) register(key string, m *etcdkeys.Member) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	lease, err := s.etcd.Grant(ctx, int64(max(s.cfg.LeaseTTL/time.Second, 1)))
	if err != nil {
		return 0, err
	}
	m.Epoch = s.appliedEpoch()
	if _, err := s.etcd.Put(ctx, key, string(m.Marshal()), clientv3.WithLease(lease.ID)); err != nil {
		return 0, err
	}
	s.lg.Info("registered", zap.String("key", key), zap.Int64("lease", int64(lease.ID)))
	return lease.ID, nil
}

// keepRegistered renews the lease and republishes the record when the
// adopted epoch moves, until the lease is lost or the server stops. A
// promoted tail reports its promotion sync apart (synced/<id>/<p>, see
// report.go), so the epoch means only that the chains were taken on.
func (s *Server) keepRegistered(key string, m *etcdkeys.Member, lease clientv3.LeaseID) error {
	defer s.revoke(lease)
	ka, err := s.etcd.KeepAlive(s.ctx, lease)
	if err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-ka:
			if !ok {
				return context.Cause(s.ctx)
			}
		case <-tick.C:
			// The epoch is reported once every partition adopted it.
			if e := s.appliedEpoch(); e != m.Epoch {
				m.Epoch = e
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				_, err := s.etcd.Put(ctx, key, string(m.Marshal()), clientv3.WithLease(lease))
				cancel()
				if err != nil {
					return err
				}
			}
		case <-s.ctx.Done():
			return nil
		}
	}
}

// revoke drops the lease on the way out so the ECS sees the departure now,
// not a TTL later. Best effort.
func (s *Server) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = s.etcd.Revoke(ctx, lease)
}

// appliedEpoch is the epoch of the ring the chain protocol adopted.
func (s *Server) appliedEpoch() uint64 { return s.core.adopted.Load() }

// watchRingLoop follows the ring key. Servers keep serving the last ring
// they saw while etcd is unreachable; only reconfiguration waits.
func (s *Server) watchRingLoop() {
	key := etcdkeys.Ring(s.cfg.Cluster)
	for backoff := 100 * time.Millisecond; s.ctx.Err() == nil; backoff = min(2*backoff, 2*time.Second) {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		resp, err := s.etcd.Get(ctx, key)
		cancel()
		if err != nil {
			s.lg.Warn("read ring", zap.Error(err))
			s.sleepCtx(backoff)
			continue
		}
		if len(resp.Kvs) > 0 {
			s.applyRing(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
		}
		backoff = 100 * time.Millisecond
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		for wr := range s.etcd.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				s.lg.Warn("ring watch", zap.Error(wr.Err()))
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					s.applyRing(ev.Kv.Value, ev.Kv.ModRevision)
				}
			}
		}
		wcancel()
		s.sleepCtx(backoff)
	}
}

// newerRing reports whether rev is newer than the ring applied.
func (s *Server) newerRing(rev int64) bool {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	return rev > s.ringRev
}

// applyRing installs a newer ring; stale or invalid ones are ignored (a
// ring's epoch only grows). rev is the etcd mod revision of the ring key: a
// revision already seen is skipped without decoding (the ping loop reads the
// ring ten times a second).
func (s *Server) applyRing(raw []byte, rev int64) {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	if rev <= s.ringRev {
		return
	}
	s.ringRev = rev
	r, err := ringmeta.Unmarshal(raw)
	if err != nil {
		s.lg.Error("ignoring invalid ring", zap.Error(err))
		return
	}
	old := s.ring.Load()
	if old != nil && r.Epoch <= old.Epoch {
		return
	}
	if need := r.Limits.MessageBytes(); need > s.cfg.MaxMessageBytes && (old == nil || old.Limits != r.Limits) {
		s.lg.Error("max-message-bytes is below what the cluster's key and value limits need; large writes will not replicate",
			zap.Int("max-message-bytes", s.cfg.MaxMessageBytes), zap.Int("needed", need))
	}
	s.ring.Store(&currentRing{Ring: r, raw: raw})
	s.core.do(func(n *chainsm.Node) { n.SetRing(s.core.now(), r) })
	s.metrics.ringChanged(r, s.cfg.ID)
	s.lg.Info("ring updated", zap.Uint64("epoch", r.Epoch), zap.Int("servers", len(r.Servers)))
	if _, ok := r.Server(s.cfg.ID); ok && len(r.Chains) > 0 {
		s.readyMu.Do(func() { close(s.readyCh) })
	}
}
