package etcdmodel

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedHistory writes a/1@2 b/1@3 a/2@4 a/1@5, deletes a/2@6.
func seedHistory(t *testing.T) *Store {
	t.Helper()
	s := New()
	for _, k := range []string{"a/1", "b/1", "a/2", "a/1"} {
		mustPut(t, s, 0, k, k, 0)
	}
	_, err := s.Delete(0, "a/2")
	require.NoError(t, err)
	require.Equal(t, int64(6), s.Rev())
	return s
}

// summary renders events as "put a/1@2" for compact expectations.
func summary(evs []Event) []string {
	out := []string{}
	for _, ev := range evs {
		switch ev.Type {
		case EventPut:
			out = append(out, fmt.Sprintf("put %s@%d", ev.KV.Key, ev.KV.ModRev))
		case EventDelete:
			out = append(out, fmt.Sprintf("del %s@%d", ev.KV.Key, ev.KV.ModRev))
		case EventCompacted:
			out = append(out, fmt.Sprintf("compacted@%d", ev.CompactRev))
		}
	}
	return out
}

func TestWatchReplay(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		startRev int64
		want     []string
	}{
		{"from the start", "", 1, []string{"put a/1@2", "put b/1@3", "put a/2@4", "put a/1@5", "del a/2@6"}},
		{"from a past revision", "a/", 4, []string{"put a/2@4", "put a/1@5", "del a/2@6"}},
		{"prefix filters", "b/", 1, []string{"put b/1@3"}},
		{"exact key as prefix", "a/1", 3, []string{"put a/1@5"}},
		{"from now", "", 0, []string{}},
		{"from the future", "", 9, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seedHistory(t)
			w := s.Watch(tt.prefix, tt.startRev)
			require.Equal(t, tt.want, summary(s.Pending(w)))
			require.Equal(t, tt.want, summary(s.Pending(w)), "Pending keeps the queue")
			require.Equal(t, tt.want, summary(s.Drain(w)))
			require.Empty(t, s.Pending(w), "Drain clears it")
		})
	}
	t.Run("live events follow the replay in order", func(t *testing.T) {
		s := seedHistory(t)
		w := s.Watch("a/", 5)
		mustPut(t, s, 0, "a/3", "x", 0)
		mustPut(t, s, 0, "b/2", "x", 0)
		_, err := s.Txn(0, nil, []Op{OpPut("a/4", nil, 0), OpDeletePrefix("a/1")}, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"put a/1@5", "del a/2@6", "put a/3@7", "put a/4@9", "del a/1@9"}, summary(s.Drain(w)))
		require.Equal(t, []WatchID(nil), s.PendingWatches())
	})
	t.Run("start in the future skips earlier revisions", func(t *testing.T) {
		s := seedHistory(t)
		w := s.Watch("", 8)
		mustPut(t, s, 0, "x", "1", 0) // 7
		mustPut(t, s, 0, "y", "1", 0) // 8
		require.Equal(t, []string{"put y@8"}, summary(s.Drain(w)))
	})
	t.Run("cancel stops events", func(t *testing.T) {
		s := New()
		w1, w2 := s.Watch("", 0), s.Watch("", 0)
		s.Cancel(w1)
		mustPut(t, s, 0, "k", "v", 0)
		require.Empty(t, s.Pending(w1))
		require.Equal(t, []WatchID{w2}, s.PendingWatches())
	})
}

func TestCompaction(t *testing.T) {
	tests := []struct {
		name string
		// watch is set up on seedHistory before Compact(5).
		watch func(s *Store) WatchID
		want  []string
	}{
		{"lagging watch with undelivered events below is cancelled", func(s *Store) WatchID {
			return s.Watch("", 2)
		}, []string{"compacted@5"}},
		{"watch whose undelivered events are all at or above survives", func(s *Store) WatchID {
			return s.Watch("", 5)
		}, []string{"put a/1@5", "del a/2@6", "put z@7"}},
		{"drained watch survives whatever its start", func(s *Store) WatchID {
			w := s.Watch("", 1)
			s.Drain(w)
			return w
		}, []string{"put z@7"}},
		{"watch created from below the compaction gets compacted", nil, []string{"compacted@5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seedHistory(t)
			var w WatchID
			if tt.watch != nil {
				w = tt.watch(s)
			}
			require.NoError(t, s.Compact(5))
			if tt.watch == nil {
				w = s.Watch("", 4)
			}
			mustPut(t, s, 0, "z", "1", 0) // 7: a compacted watch sees nothing more
			require.Equal(t, tt.want, summary(s.Drain(w)))
		})
	}
	t.Run("watch from the compaction revision replays it", func(t *testing.T) {
		s := seedHistory(t)
		require.NoError(t, s.Compact(5))
		require.Equal(t, []string{"put a/1@5", "del a/2@6"}, summary(s.Drain(s.Watch("", 5))))
		require.Equal(t, []string{"put a/1@5", "del a/2@6"}, summary(s.History()))
	})
	t.Run("compacted watch is gone once drained", func(t *testing.T) {
		s := seedHistory(t)
		w := s.Watch("", 2)
		require.NoError(t, s.Compact(6))
		require.Equal(t, []WatchID{w}, s.PendingWatches())
		ev := s.Drain(w)
		require.ErrorIs(t, ev[0].Err(), ErrCompacted)
		require.Empty(t, s.PendingWatches())
		require.Nil(t, s.Pending(w))
	})
	t.Run("re-list then watch from range revision + 1 misses nothing", func(t *testing.T) {
		s := seedHistory(t)
		w := s.Watch("a/", 2)
		require.NoError(t, s.Compact(6))
		require.Equal(t, EventCompacted, s.Drain(w)[0].Type)
		kvs, rev := s.Range("a/"), s.Rev()
		require.Len(t, kvs, 1)
		w = s.Watch("a/", rev+1)
		mustPut(t, s, 0, "a/9", "x", 0)
		require.Equal(t, []string{"put a/9@7"}, summary(s.Drain(w)))
	})
	errs := []struct {
		name    string
		rev     int64
		wantErr error
	}{
		{"at the previous compaction", 3, ErrCompacted},
		{"below the previous compaction", 2, ErrCompacted},
		{"above the current revision", 7, ErrFutureRev},
		{"at the current revision", 6, nil},
	}
	for _, tt := range errs {
		t.Run("compact "+tt.name, func(t *testing.T) {
			s := seedHistory(t)
			require.NoError(t, s.Compact(3))
			require.ErrorIs(t, s.Compact(tt.rev), tt.wantErr)
		})
	}
}
