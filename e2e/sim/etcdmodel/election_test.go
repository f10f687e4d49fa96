package etcdmodel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	elect = "/ecskv/c/ecs/leader"
	ring  = "/ecskv/c/ring"
)

func TestElection(t *testing.T) {
	s := New()
	_, ok := s.Leader(elect)
	require.False(t, ok, "no candidate yet")

	l1, l2 := s.Grant(0, 5*time.Second), s.Grant(0, 5*time.Second)
	k1, r1, err := s.Campaign(0, elect, bs("e1"), l1)
	require.NoError(t, err)
	require.Equal(t, elect+"/1", k1)
	_, r2, err := s.Campaign(0, elect, bs("e2"), l2)
	require.NoError(t, err)
	mustPut(t, s, 0, elect+"x/0", "not a candidate", 0) // outside prefix + "/"

	tests := []struct {
		name string
		key  string
		rev  int64
		want bool
	}{
		// The guard proves the key still exists as created: a candidate
		// writes only once Leader names it, as Campaign returns in clientv3.
		{"leader publishes", k1, r1, true},
		{"stale create revision cannot", k1, r1 - 1, false},
		{"another candidate's revision cannot", k1, r2, false},
		{"a key never created cannot", elect + "/7", r1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lead, ok := s.Leader(elect)
			require.True(t, ok)
			require.Equal(t, k1, lead.Key, "lowest create revision wins")
			r, err := s.Txn(0, []Cmp{CmpCreateRev(tt.key, Equal, tt.rev)}, []Op{OpPut(ring, bs(tt.name), 0)}, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Succeeded)
		})
	}

	t.Run("campaigning again keeps the key and proclaims", func(t *testing.T) {
		k, r, err := s.Campaign(0, elect, bs("e1b"), l1)
		require.NoError(t, err)
		require.Equal(t, k1, k)
		require.Equal(t, r1, r)
		lead, _ := s.Leader(elect)
		require.Equal(t, bs("e1b"), lead.Value)
		require.Equal(t, int64(2), lead.Version)
	})
	t.Run("campaign under a lost lease fails", func(t *testing.T) {
		_, _, err := s.Campaign(0, elect, bs("e9"), 99)
		require.ErrorIs(t, err, ErrLeaseNotFound)
	})
}

func TestDeposedLeader(t *testing.T) {
	s := New()
	l1 := s.Grant(0, 5*time.Second)
	k1, r1, err := s.Campaign(0, elect, bs("e1"), l1)
	require.NoError(t, err)
	l2 := s.Grant(0, 5*time.Second)
	k2, r2, err := s.Campaign(0, elect, bs("e2"), l2)
	require.NoError(t, err)

	// e1 pauses; e2 keeps its lease alive; e1's lease expires.
	require.NoError(t, s.KeepAlive(4*sec, l2))
	s.Advance(5 * sec)
	lead, _ := s.Leader(elect)
	require.Equal(t, k2, lead.Key)
	r, err := s.Txn(5*sec, []Cmp{CmpCreateRev(k2, Equal, r2)}, []Op{OpPut(ring, bs("epoch 2"), 0)}, nil)
	require.NoError(t, err)
	require.True(t, r.Succeeded)

	// e1 resumes, unaware, and sends the CAS it prepared as leader.
	r, err = s.Txn(6*sec, []Cmp{CmpCreateRev(k1, Equal, r1)}, []Op{OpPut(ring, bs("epoch 1 late"), 0)}, nil)
	require.NoError(t, err)
	require.False(t, r.Succeeded)
	// Even after re-campaigning under a new lease, it queues behind e2.
	l3 := s.Grant(6*sec, 5*time.Second)
	k3, r3, err := s.Campaign(6*sec, elect, bs("e1"), l3)
	require.NoError(t, err)
	require.Greater(t, r3, r2)
	lead, _ = s.Leader(elect)
	require.Equal(t, k2, lead.Key)
	r, err = s.Txn(6*sec, []Cmp{CmpCreateRev(k3, Equal, r3), CmpCreateRev(k1, Equal, r1)}, []Op{OpPut(ring, bs("x"), 0)}, nil)
	require.NoError(t, err)
	require.False(t, r.Succeeded)
	kv, _ := s.Get(ring)
	require.Equal(t, bs("epoch 2"), kv.Value)

	t.Run("resign hands over", func(t *testing.T) {
		require.NoError(t, s.Resign(6*sec, k2, r2))
		lead, _ := s.Leader(elect)
		require.Equal(t, k3, lead.Key)
	})
}
