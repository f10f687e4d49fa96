package kvserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// registerLoop keeps servers/<id> alive under a lease. When the lease is lost
// (etcd unreachable longer than the TTL) it registers again with a new one.
// It rewrites the record whenever the adopted ring epoch changes, which is
// how the ECS learns that a server serves the ring it published.
func (s *Server) registerLoop() {
	member := etcdkeys.Member{
		ID: s.cfg.ID, Addr: s.cfg.Advertise, Zone: s.cfg.Zone, Coords: s.cfg.Coords, Metrics: s.cfg.Metrics,
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
		var held idHeldError
		switch {
		case errors.Is(err, ErrDuplicateID):
			s.lg.Error("another running process has this server id; stopping", zap.Error(err))
			s.fatal <- err
			return
		case errors.As(err, &held):
			s.lg.Info("waiting for the membership record of an unreachable incarnation to expire", zap.Error(err))
		default:
			s.lg.Warn("membership lease lost; registering again", zap.Error(err))
		}
		if !s.sleepCtx(backoff) {
			return
		}
	}
}

// idHeldError: another incarnation's record holds the id and that
// incarnation does not answer at its address, which is not ours; its
// lease runs out if it is dead.
type idHeldError struct{ m etcdkeys.Member }

func (e idHeldError) Error() string {
	return fmt.Sprintf("server id held by incarnation %d at %s (pid %d)", e.m.Incarnation, e.m.Addr, e.m.PID)
}

// register creates the membership record under a new lease, exclusively:
// a record of another incarnation is taken over only when that one is
// provably gone (it advertised our address, which we now listen on). A
// live one at another address is ErrDuplicateID; an unreachable one is
// waited out (idHeldError) until its lease expires.
func (s *Server) register(key string, m *etcdkeys.Member) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	lease, err := s.etcd.Grant(ctx, int64(max(s.cfg.LeaseTTL/time.Second, 1)))
	if err != nil {
		return 0, err
	}
	m.Epoch = s.appliedEpoch()
	s.fillProgress(m)
	put := clientv3.OpPut(key, string(m.Marshal()), clientv3.WithLease(lease.ID))
	tr, err := s.etcd.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(put).Else(clientv3.OpGet(key)).Commit()
	if err == nil && !tr.Succeeded {
		err = s.takeOver(ctx, key, put, tr.Responses[0].GetResponseRange().Kvs)
	}
	if err != nil {
		s.revoke(lease.ID)
		return 0, err
	}
	s.lg.Info("registered", zap.String("key", key), zap.Int64("lease", int64(lease.ID)))
	return lease.ID, nil
}

// takeOver replaces the existing record kvs (if any is left) with put
// when its incarnation is gone, in a transaction on its revision.
func (s *Server) takeOver(ctx context.Context, key string, put clientv3.Op, kvs []*mvccpb.KeyValue) error {
	if len(kvs) == 0 {
		return errors.New("membership record changed meanwhile")
	}
	kv := kvs[0]
	old, err := etcdkeys.UnmarshalMember(kv.Value)
	gone := err != nil || old.Incarnation == s.incarnation() || old.Addr == s.cfg.Advertise
	if !gone {
		if s.incarnationAlive(old.Addr, old.Incarnation) {
			return fmt.Errorf("%w: %s is served by a running process at %s (pid %d, started %s); stop it or choose another --id",
				ErrDuplicateID, s.cfg.ID, old.Addr, old.PID, time.UnixMilli(old.StartUnixMs).Format(time.RFC3339))
		}
		return idHeldError{old}
	}
	tr, err := s.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).Then(put).Commit()
	if err == nil && !tr.Succeeded {
		err = errors.New("membership record changed meanwhile")
	}
	return err
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
	var lastProgress, lastDisk time.Time
	for {
		select {
		case _, ok := <-ka:
			if !ok {
				return context.Cause(s.ctx)
			}
		case <-tick.C:
			// The epoch is reported once every partition adopted it; copy
			// progress at most once a second, the store's size at most
			// every diskEvery (reading it computes pebble's metrics; read
			// on every tick, that was a fifth of an idle server's CPU).
			e := s.appliedEpoch()
			since := time.Since(lastProgress)
			progress := since >= time.Second && s.copyChanged(m)
			if !progress && since >= s.diskEvery && time.Since(lastDisk) >= s.diskEvery {
				lastDisk = time.Now()
				progress = s.diskChanged(m)
			}
			if e != m.Epoch || progress {
				m.Epoch = e
				if progress {
					lastProgress = time.Now()
					s.fillProgress(m)
				}
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				// Only while the record is still ours (our lease): else
				// register again, which finds out whose it is.
				tr, err := s.etcd.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
					Then(clientv3.OpPut(key, string(m.Marshal()), clientv3.WithLease(lease))).Commit()
				cancel()
				if err == nil && !tr.Succeeded {
					err = errors.New("membership record taken over")
				}
				if err != nil {
					return err
				}
			}
		case <-s.ctx.Done():
			return nil
		}
	}
}

// copyChanged reports whether the copy counters moved since m was written.
func (s *Server) copyChanged(m *etcdkeys.Member) bool {
	return s.copy.bytes.Load() != m.CopiedBytes || s.copy.inProgress.Load() != m.CopyingBytes
}

// diskEvery is how often the membership record's store size is compared
// with the store's (Server.diskEvery: tests shorten it).
const diskEvery = 10 * time.Second

// diskChanged reports whether the store's size moved by a MiB or more
// since m was written.
func (s *Server) diskChanged(m *etcdkeys.Member) bool {
	st, ok := s.store.EngineStats()
	return ok && max(st.DiskBytes, m.DiskBytes)-min(st.DiskBytes, m.DiskBytes) >= 1<<20
}

// fillProgress puts the copy counters and the store's size into m.
func (s *Server) fillProgress(m *etcdkeys.Member) {
	m.CopiedKeys, m.CopiedBytes, m.CopyingBytes = s.copy.keys.Load(), s.copy.bytes.Load(), s.copy.inProgress.Load()
	if st, ok := s.store.EngineStats(); ok {
		m.DiskBytes = st.DiskBytes
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
