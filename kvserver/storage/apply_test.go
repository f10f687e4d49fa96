package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestDurabilityAcrossCrash takes a crash clone of the filesystem (only synced
// data survives) after a write and checks what a restarted store sees.
func TestDurabilityAcrossCrash(t *testing.T) {
	tests := []struct {
		name    string
		sync    bool // Options.Sync
		write   func(t *testing.T, s *Store)
		survive bool
	}{
		{"synced apply", true, func(t *testing.T, s *Store) { put(t, s, 1, 2, "n", "k", "v2", 0) }, true},
		{"unsynced apply then SyncWAL", true, func(t *testing.T, s *Store) {
			_, err := s.ApplyOpts(1, 2, []Op{{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Value: []byte("v2")}}, 0, false)
			require.NoError(t, err)
			require.NoError(t, s.SyncWAL())
		}, true},
		{"unsynced apply without SyncWAL", true, func(t *testing.T, s *Store) {
			_, err := s.ApplyOpts(1, 2, []Op{{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Value: []byte("v2")}}, 0, false)
			require.NoError(t, err)
		}, false},
		{"store opened without Sync", false, func(t *testing.T, s *Store) {
			_, err := s.ApplyOpts(1, 2, []Op{{Kind: OpPut, NS: []byte("n"), Key: []byte("k"), Value: []byte("v2")}}, 0, true)
			require.NoError(t, err)
			require.NoError(t, s.SyncWAL()) // no-op
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := openTest(t, Options{FS: fs, Sync: tt.sync, CacheEntries: 10})
			put(t, s, 1, 1, "n", "k", "v1", 0)
			require.NoError(t, s.db.Flush()) // durable baseline whatever Sync is
			tt.write(t, s)
			v, _ := get(t, s, 1, "n", "k", 0)
			require.Equal(t, "v2", v, "visible before the crash")

			crashed := openTest(t, Options{FS: fs.CrashClone(vfs.CrashCloneCfg{}), CacheEntries: 10})
			wantV, wantSeq := "v1", uint64(1)
			if tt.survive {
				wantV, wantSeq = "v2", 2
			}
			v, ok := get(t, crashed, 1, "n", "k", 0)
			require.True(t, ok)
			require.Equal(t, wantV, v)
			seq, err := crashed.AppliedSeq(1)
			require.NoError(t, err)
			require.Equal(t, wantSeq, seq, "applied_seq commits with its data")
		})
	}
}
