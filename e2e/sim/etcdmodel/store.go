package etcdmodel

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Time is simulated true time in nanoseconds.
type Time int64

// Add returns t+d.
func (t Time) Add(d time.Duration) Time { return t + Time(d) }

// KV is one live key as etcd's mvccpb.KeyValue holds it.
type KV struct {
	Key   string
	Value []byte
	// CreateRev is the revision that created the key; a key deleted and put
	// again gets a new one.
	CreateRev int64
	// ModRev is the revision of the last write to the key.
	ModRev int64
	// Version counts the puts since the key was created, from 1.
	Version int64
	// Lease is the lease the key is attached to, or 0.
	Lease LeaseID
}

// clone copies the value so callers can never alias the store's bytes.
func (kv KV) clone() KV {
	kv.Value = slices.Clone(kv.Value)
	return kv
}

// Store is the model of one etcd cluster. The zero value is not usable; call
// New.
type Store struct {
	now        Time
	rev        int64
	compactRev int64
	kvs        []KV     // live keys sorted by Key
	history    []Event  // events with ModRev >= compactRev, in revision order
	leases     []*lease // sorted by id
	nextLease  LeaseID
	watches    []*watch // sorted by id
	nextWatch  WatchID
}

// New returns an empty store at revision 1, as a fresh etcd.
func New() *Store {
	return &Store{rev: 1, nextLease: 1, nextWatch: 1}
}

// Rev returns the current revision: that of the last change.
func (s *Store) Rev() int64 { return s.rev }

// CompactRev returns the revision of the last compaction, 0 if none.
func (s *Store) CompactRev() int64 { return s.compactRev }

// Now returns the latest time the store was given.
func (s *Store) Now() Time { return s.now }

// Get returns the key if it is live.
func (s *Store) Get(key string) (KV, bool) {
	i, ok := s.find(key)
	if !ok {
		return KV{}, false
	}
	return s.kvs[i].clone(), true
}

// Range returns the live keys starting with prefix, sorted by key; the
// empty prefix returns every key. The revision it reads at is Rev.
func (s *Store) Range(prefix string) []KV {
	i, j := s.prefixBounds(prefix)
	out := make([]KV, 0, j-i)
	for _, kv := range s.kvs[i:j] {
		out = append(out, kv.clone())
	}
	return out
}

// History returns the events since the last compaction in revision order
// (within one revision, in the order the txn wrote them), for checkers.
func (s *Store) History() []Event {
	out := make([]Event, len(s.history))
	for i, ev := range s.history {
		out[i] = ev.clone()
	}
	return out
}

// Check verifies the store's invariants and returns an error wrapping
// ErrInvariant for the first one broken. It is O(keys + leases + history).
func (s *Store) Check() error {
	for i, kv := range s.kvs {
		switch {
		case i > 0 && s.kvs[i-1].Key >= kv.Key:
			return fmt.Errorf("%w: keys out of order at %q", ErrInvariant, kv.Key)
		case kv.ModRev > s.rev || kv.CreateRev > kv.ModRev || kv.CreateRev < 2:
			return fmt.Errorf("%w: key %q create %d mod %d at rev %d",
				ErrInvariant, kv.Key, kv.CreateRev, kv.ModRev, s.rev)
		case kv.Version < 1:
			return fmt.Errorf("%w: key %q version %d", ErrInvariant, kv.Key, kv.Version)
		case kv.Lease != 0 && !s.leaseHasKey(kv.Lease, kv.Key):
			return fmt.Errorf("%w: key %q not listed by lease %d", ErrInvariant, kv.Key, kv.Lease)
		}
	}
	for _, l := range s.leases {
		for _, k := range l.keys {
			if i, ok := s.find(k); !ok || s.kvs[i].Lease != l.id {
				return fmt.Errorf("%w: lease %d lists %q", ErrInvariant, l.id, k)
			}
		}
	}
	for i, ev := range s.history {
		r := ev.KV.ModRev
		if r < s.compactRev || r > s.rev || (i > 0 && r < s.history[i-1].KV.ModRev) {
			return fmt.Errorf("%w: history event %d at rev %d", ErrInvariant, i, r)
		}
	}
	return nil
}

// tick moves the clock to now and expires the leases due by then.
func (s *Store) tick(now Time) []LeaseID {
	s.setNow(now)
	return s.expire(now)
}

// setNow panics when time goes back: the simulator's clock is broken and
// any result after that would be meaningless.
func (s *Store) setNow(now Time) {
	if now < s.now {
		panic(fmt.Sprintf("etcdmodel: time went back from %d to %d", s.now, now))
	}
	s.now = now
}

func (s *Store) find(key string) (int, bool) {
	return slices.BinarySearchFunc(s.kvs, key, func(kv KV, k string) int {
		return strings.Compare(kv.Key, k)
	})
}

// prefixBounds returns the index range [i, j) of the keys with the prefix.
func (s *Store) prefixBounds(prefix string) (int, int) {
	i, _ := s.find(prefix)
	j := i
	for j < len(s.kvs) && strings.HasPrefix(s.kvs[j].Key, prefix) {
		j++
	}
	return i, j
}

// put writes key at rev and returns its event.
func (s *Store) put(rev int64, key string, value []byte, id LeaseID) Event {
	kv := KV{Key: key, Value: slices.Clone(value), CreateRev: rev, ModRev: rev, Version: 1, Lease: id}
	i, ok := s.find(key)
	if ok {
		old := s.kvs[i]
		kv.CreateRev, kv.Version = old.CreateRev, old.Version+1
		s.detach(old.Lease, key)
		s.kvs[i] = kv
	} else {
		s.kvs = slices.Insert(s.kvs, i, kv)
	}
	s.attach(id, key)
	return Event{Type: EventPut, KV: kv}
}

// deleteRange deletes the keys in [i, j) at rev and returns their events.
func (s *Store) deleteRange(rev int64, i, j int) []Event {
	evs := make([]Event, 0, j-i)
	for _, kv := range s.kvs[i:j] {
		s.detach(kv.Lease, kv.Key)
		evs = append(evs, Event{Type: EventDelete, KV: KV{Key: kv.Key, ModRev: rev}})
	}
	s.kvs = slices.Delete(s.kvs, i, j)
	return evs
}

// commit makes rev current when evs changed something and queues the events.
func (s *Store) commit(rev int64, evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.rev = rev
	s.history = append(s.history, evs...)
	s.publish(evs)
}
