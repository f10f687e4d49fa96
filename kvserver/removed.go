package kvserver

import (
	"slices"
	"sync"

	"github.com/ecskv/ecskv/common/auth"
	"go.uber.org/zap"
)

// Removed users' keys. `ecs user remove` deletes a user's record and, in
// the same etcd transaction, writes a tombstone for the user's namespace
// (etcdkeys.Tombstone). watchAuthLoop keeps the tombstoned namespaces here,
// and the sweeper (sweep.go) deletes their keys in the partitions this
// server heads, through the chain like any write, so every replica loses
// them.
//
// Tombstones are kept for good, not dropped once swept: a server that has
// not yet seen the removal may still accept a write from the user's old
// token, and a partition may change head or be restored from an older
// replica after its sweep; with the tombstone still there, the next pass
// deletes such keys too. Dropping them would need every head to report
// every partition swept past the last possible write; a tombstone is a
// few dozen bytes per removed user, and a namespace with no keys left
// costs one seek per partition and pass.

// removedSet is the tombstoned namespaces. watchAuthLoop writes it, the
// sweeper reads it.
type removedSet struct {
	mu sync.Mutex // guards ns
	ns map[string]struct{}
}

// reset replaces the set with nss and returns the namespaces new to it.
func (r *removedSet) reset(nss []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]struct{}, len(nss))
	var added []string
	for _, ns := range nss {
		if _, ok := r.ns[ns]; !ok {
			added = append(added, ns)
		}
		m[ns] = struct{}{}
	}
	r.ns = m
	return added
}

// add adds ns and reports whether it is new.
func (r *removedSet) add(ns string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ns[ns]; ok {
		return false
	}
	if r.ns == nil {
		r.ns = map[string]struct{}{}
	}
	r.ns[ns] = struct{}{}
	return true
}

func (r *removedSet) remove(ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ns, ns)
}

// list returns the namespaces, sorted.
func (r *removedSet) list() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, 0, len(r.ns))
	for ns := range r.ns {
		out = append(out, []byte(ns))
	}
	slices.SortFunc(out, func(a, b []byte) int { return slices.Compare(a, b) })
	return out
}

func (r *removedSet) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ns)
}

// tombstoneNS returns the namespace a tombstone key names, if it can be
// one: a user id or name. Anything else, above all the empty namespace of
// a cluster without authentication, is never swept.
func (s *Server) tombstoneNS(suffix []byte) (string, bool) {
	ns := string(suffix)
	if err := auth.CheckUser(ns); err != nil {
		s.lg.Error("bad tombstone in etcd", zap.String("namespace", ns), zap.Error(err))
		return "", false
	}
	return ns, true
}

// sweepRemoved deletes up to sweepBatch keys of removed users in partition
// p, which this server heads, through the chain. Nobody writes to those
// namespaces any more (their tokens are refused), so the deletes need no
// re-check, unlike the TTL sweep's.
func (s *Server) sweepRemoved(p int, nss [][]byte) {
	budget := sweepBatch
	for _, ns := range nss {
		ops, err := s.store.NamespaceKeys(p, ns, budget)
		if err != nil {
			s.lg.Warn("removed user sweep", zap.Int("partition", p), zap.Error(err))
			return
		}
		for _, op := range ops {
			if err := s.core.erase(p, op); err != nil {
				s.lg.Warn("removed user delete", zap.Int("partition", p), zap.Error(err))
				return
			}
			s.metrics.removedSwept.Inc()
		}
		if len(ops) > 0 {
			s.lg.Debug("swept removed user's keys", zap.Int("partition", p), zap.ByteString("namespace", ns), zap.Int("keys", len(ops)))
		}
		if budget -= len(ops); budget <= 0 {
			return
		}
	}
}
