package kvserver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Read leases (DESIGN §4). A member serves reads only while it holds a lease
// from a chain neighbour (its predecessor; the head from its successor).
// A grantor grants only for the epoch it holds itself and only while it has
// heard from etcd within leaseDuration/2, and applies any newer ring that
// read returned before counting it as contact. So once a new epoch is in
// etcd at T0, no lease of the old epoch outlives T0 + 1.5·leaseDuration; a
// member that adopts a chain from which someone was removed therefore holds
// back commits and reads for holdback() after it learns of it.
const (
	leaseDuration = 400 * time.Millisecond
	leaseDrift    = 0.1 // ε: bound on relative clock drift
)

func (s *Server) holdback() time.Duration {
	return time.Duration(1.5 * float64(leaseDuration) * (1 + leaseDrift))
}

// leaseTable holds the leases this server was granted, by grantor.
type leaseTable struct {
	mu    sync.Mutex // guards until and epoch
	until map[string]time.Time
	epoch map[string]uint64
	// etcdOK is the start time (unix nanos) of the last linearizable etcd
	// read that succeeded; grants need it fresh.
	etcdOK atomic.Int64
}

func newLeaseTable() *leaseTable {
	return &leaseTable{until: map[string]time.Time{}, epoch: map[string]uint64{}}
}

// valid reports whether the lease from grantor was granted at an epoch no
// older than minEpoch (when the partition's chain last changed here) and has
// not run out. Epoch changes that leave a chain alone do not void it.
func (lt *leaseTable) valid(grantor string, minEpoch uint64, now time.Time) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.epoch[grantor] >= minEpoch && now.Before(lt.until[grantor])
}

func (lt *leaseTable) record(grantor string, epoch uint64, until time.Time) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if epoch > lt.epoch[grantor] || epoch == lt.epoch[grantor] && until.After(lt.until[grantor]) {
		lt.epoch[grantor], lt.until[grantor] = epoch, until
	}
}

// grantLease answers a neighbour's lease request.
func (s *Server) grantLease(req *kvpb.LeaseRequest) *kvpb.LeaseResponse {
	// Read the ring before the contact time: a ping stores its time only
	// after applying the ring it read (see etcdPingLoop).
	epoch := s.adoptedEpoch()
	fresh := time.Since(time.Unix(0, s.leases.etcdOK.Load())) < leaseDuration/2
	ok := epoch != 0 && req.Epoch == epoch && fresh && !s.stopped.Load()
	return &kvpb.LeaseResponse{Granted: ok, Epoch: epoch, DurationMs: leaseDuration.Milliseconds()}
}

// etcdPingLoop reads the ring linearizably every leaseDuration/4: it keeps
// this server's etcd contact fresh for granting leases and catches ring
// changes a slow watch has not delivered yet.
func (s *Server) etcdPingLoop() {
	key := etcdkeys.Ring(s.cfg.Cluster)
	for s.sleepCtx(leaseDuration / 4) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(s.ctx, leaseDuration/4)
		// Keys only: the revision tells whether the ring changed, and the
		// ring itself (tens of KiB) is fetched only then.
		resp, err := s.etcd.Get(ctx, key, clientv3.WithKeysOnly())
		if err == nil && len(resp.Kvs) > 0 && s.newerRing(resp.Kvs[0].ModRevision) {
			resp, err = s.etcd.Get(ctx, key)
			if err == nil && len(resp.Kvs) > 0 {
				s.applyRing(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
			}
		}
		cancel()
		if err != nil {
			continue
		}
		s.leases.etcdOK.Store(start.UnixNano())
	}
}

// leaseLoop renews, every leaseDuration/3, a lease from every neighbour this
// server needs one from.
func (s *Server) leaseLoop() {
	for s.sleepCtx(leaseDuration / 3) {
		cur := s.ring.Load()
		if cur == nil {
			continue
		}
		for g := range s.grantors(cur.Ring.Chains) {
			s.goAttach(func() { s.renewLease(g, cur.Epoch) }) // joined by Stop before closeAll
		}
	}
}

func (s *Server) renewLease(grantor string, epoch uint64) {
	addr, ok := s.addrOf(grantor)
	if !ok {
		return
	}
	conn, err := s.peers.conn(addr)
	if err != nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, leaseDuration/3)
	defer cancel()
	resp, err := kvpb.NewReplicationClient(conn).Lease(ctx, &kvpb.LeaseRequest{From: s.cfg.ID, Epoch: epoch})
	if err != nil || !resp.Granted {
		s.lg.Debug("lease not granted", zap.String("grantor", grantor), zap.Error(err))
		return
	}
	// Count from when we asked, shortened by the drift bound.
	valid := time.Duration(float64(time.Duration(resp.DurationMs)*time.Millisecond) * (1 - leaseDrift))
	s.leases.record(grantor, epoch, start.Add(valid))
}

// grantors lists the neighbours this server needs leases from.
func (s *Server) grantors(chains []ringmeta.Chain) map[string]struct{} {
	out := map[string]struct{}{}
	for _, c := range chains {
		if g := grantorIn(c.Members, s.cfg.ID); g != "" {
			out[g] = struct{}{}
		}
	}
	return out
}

// grantorIn returns id's lease grantor in a chain: its predecessor, the
// successor for the head, "" for a chain of one (nobody else can commit).
func grantorIn(members []string, id string) string {
	for i, m := range members {
		if m != id {
			continue
		}
		switch {
		case i > 0:
			return members[i-1]
		case len(members) > 1:
			return members[1]
		}
	}
	return ""
}

// canReadLocked reports whether this member may serve reads of the
// partition now: outside any holdback and under a valid lease.
func (s *Server) canReadLocked(ps *partState) bool {
	now := time.Now()
	if now.Before(ps.holdUntil) || ps.syncing {
		return false
	}
	g := grantorIn(ps.members, s.cfg.ID)
	return g == "" || s.leases.valid(g, ps.since, now)
}
