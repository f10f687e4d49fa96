package etcdmodel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLeaseExpiry(t *testing.T) {
	s := New()
	id := s.Grant(0, 10*time.Second)
	w := s.Watch("", 0)
	mustPut(t, s, sec, "a", "1", id)     // rev 2
	mustPut(t, s, sec, "b", "1", id)     // rev 3
	mustPut(t, s, sec, "c", "1", 0)      // rev 4: not leased
	mustPut(t, s, sec, "moved", "1", id) // rev 5
	mustPut(t, s, sec, "moved", "2", 0)  // rev 6: moved off the lease
	require.Equal(t, []string{"a", "b"}, s.LeaseKeys(id))
	s.Drain(w)

	require.Empty(t, s.Advance(10*sec-1), "one ns before the deadline")
	require.Equal(t, int64(6), s.Rev())
	require.Equal(t, []LeaseID{id}, s.Advance(10*sec))
	require.Equal(t, int64(7), s.Rev(), "one revision for the whole expiry")
	require.Equal(t, []Event{
		{Type: EventDelete, KV: KV{Key: "a", ModRev: 7}},
		{Type: EventDelete, KV: KV{Key: "b", ModRev: 7}},
	}, s.Drain(w))
	var keys []string
	for _, kv := range s.Range("") {
		keys = append(keys, kv.Key)
	}
	require.Equal(t, []string{"c", "moved"}, keys)
	require.Empty(t, s.Leases())
	require.NoError(t, s.Check())
}

func TestLeaseExpiryOrder(t *testing.T) {
	s := New()
	late := s.Grant(0, 3*time.Second)
	tie1 := s.Grant(0, 2*time.Second)
	tie2 := s.Grant(0, 2*time.Second)
	for i, id := range []LeaseID{late, tie1, tie2} {
		mustPut(t, s, 0, string(rune('a'+i)), "x", id)
	}
	at, ok := s.NextDeadline()
	require.True(t, ok)
	require.Equal(t, 2*sec, at)
	require.Equal(t, []LeaseID{tie1, tie2, late}, s.Advance(5*sec))
	require.Equal(t, int64(4+3), s.Rev(), "one revision per expired lease")
	_, ok = s.NextDeadline()
	require.False(t, ok)
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(s *Store, id LeaseID)
		at      Time
		wantErr error
	}{
		{"in time", func(*Store, LeaseID) {}, 9 * sec, nil},
		{"at the deadline", func(*Store, LeaseID) {}, 10 * sec, ErrLeaseNotFound},
		{"after expiry", func(s *Store, _ LeaseID) { s.Advance(11 * sec) }, 12 * sec, ErrLeaseNotFound},
		{"after revoke", func(s *Store, id LeaseID) { _ = s.Revoke(sec, id) }, 2 * sec, ErrLeaseNotFound},
		{"kept alive before extends", func(s *Store, id LeaseID) { _ = s.KeepAlive(5*sec, id) }, 14 * sec, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			id := s.Grant(0, 10*time.Second)
			mustPut(t, s, 0, "k", "v", id)
			tt.prepare(s, id)
			err := s.KeepAlive(tt.at, id)
			require.ErrorIs(t, err, tt.wantErr)
			_, live := s.Get("k")
			require.Equal(t, tt.wantErr == nil, live)
			if err == nil {
				left, err := s.TTLRemaining(tt.at, id)
				require.NoError(t, err)
				require.Equal(t, 10*time.Second, left)
			}
		})
	}
	t.Run("unknown lease", func(t *testing.T) {
		require.ErrorIs(t, New().KeepAlive(0, 42), ErrLeaseNotFound)
		require.ErrorIs(t, New().Revoke(0, 42), ErrLeaseNotFound)
	})
}

func TestTTLRemaining(t *testing.T) {
	s := New()
	id := s.Grant(sec, 10*time.Second)
	tests := []struct {
		name    string
		at      Time
		want    time.Duration
		wantErr error
	}{
		{"just granted", sec, 10 * time.Second, nil},
		{"half way", 6 * sec, 5 * time.Second, nil},
		{"past the deadline before any expiry call", 11 * sec, 0, ErrLeaseNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			left, err := s.TTLRemaining(tt.at, id)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.want, left)
		})
	}
	require.Equal(t, []LeaseID{id}, s.Leases(), "TTLRemaining changes nothing")
}

func TestPromote(t *testing.T) {
	tests := []struct {
		name     string
		promote  bool
		wantLive bool
	}{
		{"outage then promote keeps the lease", true, true},
		{"without promote the late call expires it", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			id := s.Grant(0, 10*time.Second)
			mustPut(t, s, 0, "server", "up", id)
			require.NoError(t, s.KeepAlive(8*sec, id))
			// etcd is down from 9s to 100s: the simulator makes no call.
			if tt.promote {
				s.Promote(100 * sec)
				at, _ := s.NextDeadline()
				require.Equal(t, 110*sec, at)
			}
			s.Advance(100 * sec)
			_, live := s.Get("server")
			require.Equal(t, tt.wantLive, live)
			require.Equal(t, tt.wantLive, s.KeepAlive(100*sec, id) == nil)
		})
	}
	t.Run("promote restarts at full ttl", func(t *testing.T) {
		s := New()
		a := s.Grant(0, 10*time.Second)
		b := s.Grant(sec, 3*time.Second)
		s.Promote(2 * sec)
		for _, c := range []struct {
			id   LeaseID
			want time.Duration
		}{{a, 10 * time.Second}, {b, 3 * time.Second}} {
			left, err := s.TTLRemaining(2*sec, c.id)
			require.NoError(t, err)
			require.Equal(t, c.want, left)
		}
	})
}

func TestImplicitExpiry(t *testing.T) {
	s := New()
	id := s.Grant(0, time.Second)
	mustPut(t, s, 0, "k", "v", id)
	_, err := s.Put(sec, "k2", bs("v"), id)
	require.ErrorIs(t, err, ErrLeaseNotFound, "a call at the deadline expires first")
	_, ok := s.Get("k")
	require.False(t, ok)
	require.Equal(t, int64(3), s.Rev(), "the expiry took a revision, the failed put none")
}
