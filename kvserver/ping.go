package kvserver

import (
	"context"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseDuration is the read lease L (DESIGN §4); the chain protocol holds
// back 1.5 L(1+ε) after a member's removal.
const leaseDuration = 400 * time.Millisecond

// etcdPingLoop reads the ring linearizably every L/4: it keeps this
// server's etcd contact fresh (a member grants read leases, and a sole
// member serves, only while it is) and catches ring changes a slow watch
// has not delivered yet. The contact counts from when the read started,
// and only after any newer ring it returned was adopted.
func (s *Server) etcdPingLoop() {
	key := etcdkeys.Ring(s.cfg.Cluster)
	for s.sleepCtx(leaseDuration / 4) {
		start := s.core.now()
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
		s.core.do(func(n *chainsm.Node) { n.EtcdContact(start) })
	}
}
