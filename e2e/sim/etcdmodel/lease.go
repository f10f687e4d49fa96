package etcdmodel

import (
	"cmp"
	"slices"
	"time"
)

// LeaseID names a lease; 0 means no lease. Grant hands out 1, 2, 3...
type LeaseID int64

type lease struct {
	id       LeaseID
	ttl      time.Duration
	deadline Time
	keys     []string // attached keys, sorted
}

// Grant creates a lease that expires ttl after now unless kept alive.
// ttl must be positive.
func (s *Store) Grant(now Time, ttl time.Duration) LeaseID {
	if ttl <= 0 {
		panic("etcdmodel: lease ttl must be positive")
	}
	s.tick(now)
	l := &lease{id: s.nextLease, ttl: ttl, deadline: now.Add(ttl)}
	s.nextLease++
	s.leases = append(s.leases, l) // ids only grow, so the slice stays sorted
	return l.id
}

// KeepAlive restarts the lease's deadline at now+TTL. It fails with
// ErrLeaseNotFound once the lease has expired, even if the keepalive was
// sent in time: the simulator models the delay.
func (s *Store) KeepAlive(now Time, id LeaseID) error {
	s.tick(now)
	l := s.lease(id)
	if l == nil {
		return ErrLeaseNotFound
	}
	l.deadline = now.Add(l.ttl)
	return nil
}

// Revoke deletes the lease and its keys, in one revision if it had keys.
func (s *Store) Revoke(now Time, id LeaseID) error {
	s.tick(now)
	l := s.lease(id)
	if l == nil {
		return ErrLeaseNotFound
	}
	s.revoke(l)
	return nil
}

// TTLRemaining returns how long the lease has left at now. It changes
// nothing: a lease past its deadline reads as not found even before the
// next call expires it.
func (s *Store) TTLRemaining(now Time, id LeaseID) (time.Duration, error) {
	l := s.lease(id)
	if l == nil || l.deadline <= now {
		return 0, ErrLeaseNotFound
	}
	return time.Duration(l.deadline - now), nil
}

// Leases returns the live leases in id order.
func (s *Store) Leases() []LeaseID {
	out := make([]LeaseID, len(s.leases))
	for i, l := range s.leases {
		out[i] = l.id
	}
	return out
}

// LeaseKeys returns the keys attached to the lease, sorted.
func (s *Store) LeaseKeys(id LeaseID) []string {
	if l := s.lease(id); l != nil {
		return slices.Clone(l.keys)
	}
	return nil
}

// Advance moves the clock to now and expires every lease whose deadline is
// at or before now, earliest first (ties by id), each deleting its keys in
// one revision as etcd's revoke txn. It returns the expired leases.
func (s *Store) Advance(now Time) []LeaseID { return s.tick(now) }

// Promote restarts every lease's deadline at now+TTL, as etcd's
// lessor.Promote when a leader takes over or etcd returns from an outage:
// leases never expire because etcd itself was away. Call it before any other
// call after the outage, since those expire the leases due by their now.
func (s *Store) Promote(now Time) {
	s.setNow(now)
	for _, l := range s.leases {
		l.deadline = now.Add(l.ttl)
	}
}

// NextDeadline returns the earliest lease deadline, so the simulator can
// schedule an Advance there; false when there is no lease.
func (s *Store) NextDeadline() (Time, bool) {
	if l := s.earliest(); l != nil {
		return l.deadline, true
	}
	return 0, false
}

// expire revokes the leases due at now.
func (s *Store) expire(now Time) []LeaseID {
	var ids []LeaseID
	for {
		l := s.earliest()
		if l == nil || l.deadline > now {
			return ids
		}
		s.revoke(l)
		ids = append(ids, l.id)
	}
}

// earliest returns the lease with the lowest (deadline, id), or nil.
func (s *Store) earliest() *lease {
	var best *lease
	for _, l := range s.leases {
		if best == nil || l.deadline < best.deadline {
			best = l // on a tie the first, lower id wins
		}
	}
	return best
}

// revoke deletes l and its keys in one revision.
func (s *Store) revoke(l *lease) {
	rev := s.rev + 1
	var evs []Event
	for _, k := range l.keys {
		if i, ok := s.find(k); ok {
			s.kvs = slices.Delete(s.kvs, i, i+1)
			evs = append(evs, Event{Type: EventDelete, KV: KV{Key: k, ModRev: rev}})
		}
	}
	s.leases = slices.DeleteFunc(s.leases, func(x *lease) bool { return x == l })
	s.commit(rev, evs)
}

func (s *Store) lease(id LeaseID) *lease {
	i, ok := slices.BinarySearchFunc(s.leases, id, func(l *lease, id LeaseID) int {
		return cmp.Compare(l.id, id)
	})
	if !ok {
		return nil
	}
	return s.leases[i]
}

func (s *Store) leaseHasKey(id LeaseID, key string) bool {
	l := s.lease(id)
	if l == nil {
		return false
	}
	_, ok := slices.BinarySearch(l.keys, key)
	return ok
}

// attach records key under lease id (0: none). The lease exists: Txn checked.
func (s *Store) attach(id LeaseID, key string) {
	if l := s.lease(id); l != nil {
		if i, ok := slices.BinarySearch(l.keys, key); !ok {
			l.keys = slices.Insert(l.keys, i, key)
		}
	}
}

// detach forgets key under lease id, when a put moves it or a delete drops it.
func (s *Store) detach(id LeaseID, key string) {
	if l := s.lease(id); l != nil {
		if i, ok := slices.BinarySearch(l.keys, key); ok {
			l.keys = slices.Delete(l.keys, i, i+1)
		}
	}
}
