package etcdmodel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const sec = Time(time.Second)

func bs(s string) []byte { return []byte(s) }

func mustPut(t *testing.T, s *Store, now Time, key, val string, id LeaseID) int64 {
	t.Helper()
	rev, err := s.Put(now, key, bs(val), id)
	require.NoError(t, err)
	return rev
}

func TestRevisionAccounting(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
		want int64
	}{
		{"fresh store is at 1", func(*testing.T, *Store) {}, 1},
		{"one put", func(t *testing.T, s *Store) { mustPut(t, s, 0, "a", "1", 0) }, 2},
		{"three puts in one txn take one revision", func(t *testing.T, s *Store) {
			_, err := s.Txn(0, nil, []Op{OpPut("a", nil, 0), OpPut("b", nil, 0), OpPut("c", nil, 0)}, nil)
			require.NoError(t, err)
		}, 2},
		{"read-only txn takes none", func(t *testing.T, s *Store) {
			mustPut(t, s, 0, "a", "1", 0)
			r, err := s.Txn(0, nil, []Op{OpGet("a"), OpGetPrefix("")}, nil)
			require.NoError(t, err)
			require.Equal(t, int64(2), r.Rev)
		}, 2},
		{"delete of a missing key takes none", func(t *testing.T, s *Store) {
			rev, err := s.Delete(0, "nope")
			require.NoError(t, err)
			require.Equal(t, int64(1), rev)
		}, 1},
		{"delete prefix of two keys takes one", func(t *testing.T, s *Store) {
			mustPut(t, s, 0, "p/1", "x", 0)
			mustPut(t, s, 0, "p/2", "x", 0)
			r, err := s.Txn(0, nil, []Op{OpDeletePrefix("p/")}, nil)
			require.NoError(t, err)
			require.Equal(t, int64(2), r.Responses[0].Deleted)
		}, 4},
		{"failed compare with empty else takes none", func(t *testing.T, s *Store) {
			r, err := s.Txn(0, []Cmp{CmpVersion("a", Greater, 0)}, []Op{OpPut("a", nil, 0)}, nil)
			require.NoError(t, err)
			require.False(t, r.Succeeded)
		}, 1},
		{"grant and keepalive take none", func(t *testing.T, s *Store) {
			require.NoError(t, s.KeepAlive(0, s.Grant(0, time.Second)))
		}, 1},
		{"revoking a lease without keys takes none", func(t *testing.T, s *Store) {
			require.NoError(t, s.Revoke(0, s.Grant(0, time.Second)))
		}, 1},
		{"revoking a lease with two keys takes one", func(t *testing.T, s *Store) {
			id := s.Grant(0, time.Second)
			mustPut(t, s, 0, "x", "1", id)
			mustPut(t, s, 0, "y", "1", id)
			require.NoError(t, s.Revoke(0, id))
			require.Empty(t, s.Range(""))
		}, 4},
		{"txn failing on a missing lease takes none", func(t *testing.T, s *Store) {
			_, err := s.Txn(0, nil, []Op{OpPut("a", nil, 0), OpPut("b", nil, 7)}, nil)
			require.ErrorIs(t, err, ErrLeaseNotFound)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			tt.run(t, s)
			require.Equal(t, tt.want, s.Rev())
			require.NoError(t, s.Check())
		})
	}
}

func TestKeyFields(t *testing.T) {
	s := New()
	mustPut(t, s, 0, "k", "v1", 0)    // rev 2
	mustPut(t, s, 0, "k", "v2", 0)    // rev 3
	mustPut(t, s, 0, "other", "o", 0) // rev 4
	_, err := s.Delete(0, "k")        // rev 5
	require.NoError(t, err)
	mustPut(t, s, 0, "k", "v3", s.Grant(0, time.Second)) // rev 6
	tests := []struct {
		name string
		key  string
		want KV
		ok   bool
	}{
		{"recreated key restarts create and version", "k", KV{Key: "k", Value: bs("v3"), CreateRev: 6, ModRev: 6, Version: 1, Lease: 1}, true},
		{"untouched key", "other", KV{Key: "other", Value: bs("o"), CreateRev: 4, ModRev: 4, Version: 1}, true},
		{"missing key", "none", KV{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv, ok := s.Get(tt.key)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, kv)
		})
	}
	t.Run("overwrite bumps version keeps create", func(t *testing.T) {
		s := New()
		mustPut(t, s, 0, "k", "v1", 0)
		mustPut(t, s, 0, "k", "v2", 0)
		kv, _ := s.Get("k")
		require.Equal(t, KV{Key: "k", Value: bs("v2"), CreateRev: 2, ModRev: 3, Version: 2}, kv)
	})
	t.Run("range is sorted and bounded by prefix", func(t *testing.T) {
		s := New()
		for _, k := range []string{"b/2", "a", "b/1", "b", "c/1", "b/10"} {
			mustPut(t, s, 0, k, k, 0)
		}
		var keys []string
		for _, kv := range s.Range("b/") {
			keys = append(keys, kv.Key)
		}
		require.Equal(t, []string{"b/1", "b/10", "b/2"}, keys)
		require.Len(t, s.Range(""), 6)
	})
	t.Run("returned values do not alias the store", func(t *testing.T) {
		s := New()
		v := bs("abc")
		mustPut(t, s, 0, "k", string(v), 0)
		kv, _ := s.Get("k")
		kv.Value[0] = 'X'
		got, _ := s.Get("k")
		require.Equal(t, bs("abc"), got.Value)
	})
}

func TestTxnCompare(t *testing.T) {
	s := New()
	id := s.Grant(0, time.Minute)
	mustPut(t, s, 0, "k", "v1", 0) // rev 2
	mustPut(t, s, 0, "k", "v2", 0) // rev 3: version 2, create 2, mod 3
	mustPut(t, s, 0, "l", "", id)  // rev 4: empty value under lease 1
	tests := []struct {
		name string
		cmps []Cmp
		want bool
	}{
		{"no compares succeed", nil, true},
		{"value equal", []Cmp{CmpValue("k", Equal, bs("v2"))}, true},
		{"value not equal", []Cmp{CmpValue("k", NotEqual, bs("v1"))}, true},
		{"value less", []Cmp{CmpValue("k", Less, bs("v3"))}, true},
		{"value greater fails", []Cmp{CmpValue("k", Greater, bs("v3"))}, false},
		{"empty value equals nil", []Cmp{CmpValue("l", Equal, nil)}, true},
		{"version", []Cmp{CmpVersion("k", Equal, 2)}, true},
		{"create rev", []Cmp{CmpCreateRev("k", Equal, 2)}, true},
		{"mod rev greater", []Cmp{CmpModRev("k", Greater, 2)}, true},
		{"mod rev less fails", []Cmp{CmpModRev("k", Less, 3)}, false},
		{"lease", []Cmp{CmpLease("l", Equal, id)}, true},
		{"all must hold", []Cmp{CmpVersion("k", Equal, 2), CmpVersion("l", Equal, 2)}, false},
		{"missing key: value equal nil fails", []Cmp{CmpValue("m", Equal, nil)}, false},
		{"missing key: value not equal fails too", []Cmp{CmpValue("m", NotEqual, bs("x"))}, false},
		{"missing key: version is 0", []Cmp{CmpVersion("m", Equal, 0)}, true},
		{"missing key: create rev is 0", []Cmp{CmpCreateRev("m", Equal, 0)}, true},
		{"missing key: mod rev below 1", []Cmp{CmpModRev("m", Less, 1)}, true},
		{"missing key: lease is 0", []Cmp{CmpLease("m", Equal, 0)}, true},
		{"missing key: version greater fails", []Cmp{CmpVersion("m", Greater, 0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Txn(0, tt.cmps, []Op{OpGet("k")}, []Op{OpGet("l")})
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Succeeded)
			want := "l"
			if tt.want {
				want = "k"
			}
			require.Len(t, r.Responses, 1)
			require.Equal(t, want, r.Responses[0].KVs[0].Key, "branch taken")
			require.Equal(t, int64(4), r.Rev)
		})
	}
}

func TestTxnErrors(t *testing.T) {
	tests := []struct {
		name       string
		cmps       []Cmp
		then, els  []Op
		wantErr    error
		wantChange bool
	}{
		{"put under a never granted lease", nil, []Op{OpPut("a", nil, 0), OpPut("b", nil, 9)}, nil, ErrLeaseNotFound, false},
		{"put under an expired lease", nil, []Op{OpPut("a", nil, 1)}, nil, ErrLeaseNotFound, false},
		{"put under a revoked lease", nil, []Op{OpPut("a", nil, 2)}, nil, ErrLeaseNotFound, false},
		{"missing lease in the branch not taken", []Cmp{CmpVersion("a", Equal, 0)}, []Op{OpPut("a", nil, 0)}, []Op{OpPut("a", nil, 9)}, nil, true},
		{"put under a live lease", nil, []Op{OpPut("a", nil, 3)}, nil, nil, true},
		{"same key put twice", nil, []Op{OpPut("a", nil, 0), OpPut("a", nil, 0)}, nil, ErrDuplicateKey, false},
		{"put inside a delete prefix", nil, []Op{OpDeletePrefix("a"), OpPut("ab", nil, 0)}, nil, ErrDuplicateKey, false},
		{"delete after put of the key", nil, []Op{OpPut("a", nil, 0), OpDelete("a")}, nil, ErrDuplicateKey, false},
		{"duplicate in the else branch rejected too", nil, nil, []Op{OpPut("a", nil, 0), OpPut("a", nil, 0)}, ErrDuplicateKey, false},
		{"put then get of the key is fine", nil, []Op{OpPut("a", nil, 0), OpGet("a")}, nil, nil, true},
		{"empty put key", nil, []Op{OpPut("", nil, 0)}, nil, ErrEmptyKey, false},
		{"empty compare key", []Cmp{CmpVersion("", Equal, 0)}, nil, nil, ErrEmptyKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			// Lease 1 expires at 1s, lease 2 is revoked, lease 3 lives.
			s.Grant(0, time.Second)
			require.NoError(t, s.Revoke(0, s.Grant(0, time.Second)))
			s.Grant(0, time.Minute)
			r, err := s.Txn(2*sec, tt.cmps, tt.then, tt.els)
			require.ErrorIs(t, err, tt.wantErr)
			if tt.wantChange {
				require.Equal(t, int64(2), r.Rev)
				_, ok := s.Get("a")
				require.True(t, ok)
				return
			}
			require.Equal(t, int64(1), r.Rev)
			require.Equal(t, int64(1), s.Rev())
			require.Empty(t, s.Range(""))
			require.Empty(t, s.History())
		})
	}
}

func TestTxnReadsSeeEarlierWrites(t *testing.T) {
	s := New()
	mustPut(t, s, 0, "b", "old", 0)
	r, err := s.Txn(0, nil, []Op{OpPut("a", bs("1"), 0), OpGetPrefix(""), OpDelete("b"), OpGet("b")}, nil)
	require.NoError(t, err)
	require.True(t, r.Succeeded)
	require.Equal(t, int64(3), r.Rev)
	require.Equal(t, []Response{
		{},
		{KVs: []KV{
			{Key: "a", Value: bs("1"), CreateRev: 3, ModRev: 3, Version: 1},
			{Key: "b", Value: bs("old"), CreateRev: 2, ModRev: 2, Version: 1},
		}},
		{Deleted: 1},
		{KVs: []KV{}},
	}, r.Responses)
	require.Equal(t, []Event{
		{Type: EventPut, KV: KV{Key: "b", Value: bs("old"), CreateRev: 2, ModRev: 2, Version: 1}},
		{Type: EventPut, KV: KV{Key: "a", Value: bs("1"), CreateRev: 3, ModRev: 3, Version: 1}},
		{Type: EventDelete, KV: KV{Key: "b", ModRev: 3}},
	}, s.History())
}

func TestTimeGoingBackPanics(t *testing.T) {
	s := New()
	s.Advance(5 * sec)
	require.Panics(t, func() { s.Advance(4 * sec) })
	require.Panics(t, func() { s.Promote(4 * sec) })
	require.NotPanics(t, func() { s.Advance(5 * sec) })
}
