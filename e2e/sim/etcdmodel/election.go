package etcdmodel

import "fmt"

// Campaign enters the election under prefix as clientv3
// concurrency.Election does: it puts prefix/<lease id in hex> with value
// under the lease unless that key exists, in which case it keeps its create
// revision and only updates the value. It does not wait: the candidate leads
// once Leader returns its key. createRev is what the leader's guarded txns
// compare (CmpCreateRev(key, Equal, createRev)).
func (s *Store) Campaign(now Time, prefix string, value []byte, lease LeaseID) (key string, createRev int64, err error) {
	key = fmt.Sprintf("%s/%x", prefix, int64(lease))
	r, err := s.Txn(now,
		[]Cmp{CmpCreateRev(key, Equal, 0)},
		[]Op{OpPut(key, value, lease)},
		[]Op{OpGet(key)})
	if err != nil {
		return "", 0, err
	}
	if r.Succeeded {
		return key, r.Rev, nil
	}
	createRev = r.Responses[0].KVs[0].CreateRev
	// Re-campaigning with a new value proclaims it, guarded like any leader write.
	if _, err := s.Txn(now, []Cmp{CmpCreateRev(key, Equal, createRev), CmpValue(key, NotEqual, value)},
		[]Op{OpPut(key, value, lease)}, nil); err != nil {
		return "", 0, err
	}
	return key, createRev, nil
}

// Leader returns the candidate key under prefix with the lowest create
// revision: the elected one.
func (s *Store) Leader(prefix string) (KV, bool) {
	var best KV
	found := false
	for _, kv := range s.Range(prefix + "/") {
		if !found || kv.CreateRev < best.CreateRev {
			best, found = kv, true
		}
	}
	return best, found
}

// Resign deletes the candidate key if it is still the one created at
// createRev, as clientv3 Election.Resign.
func (s *Store) Resign(now Time, key string, createRev int64) error {
	_, err := s.Txn(now, []Cmp{CmpCreateRev(key, Equal, createRev)}, []Op{OpDelete(key)}, nil)
	return err
}
