package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// crashOpts are a synced store's options on fs: ApplyEntry never syncs, so
// SyncWAL is what makes entries durable.
func crashOpts(fs vfs.FS) Options { return Options{FS: fs, Sync: true, CacheEntries: 100} }

// TestCrashKeepsSyncedLog applies entries unsynced, syncs, applies more
// and crashes (only synced data survives): the restarted store recovers
// exactly the synced entries, with a contiguous log, and nothing after.
func TestCrashKeepsSyncedLog(t *testing.T) {
	const p = 3
	tests := []struct {
		name             string
		synced, unsynced uint64
		truncated        uint64 // truncation point when synced
	}{
		{"all synced", 10, 0, 4},
		{"unsynced tail lost", 10, 7, 4},
		{"nothing synced but the version", 0, 5, 0},
		{"log truncated to the end", 8, 3, 8},
		{"long unsynced tail", 5, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := openTest(t, crashOpts(fs))
			fillPartition(t, s, p, 1, tt.synced)
			require.NoError(t, s.TruncateLog(p, tt.truncated))
			require.NoError(t, s.SetVersion(p, 3, 2, true))
			require.NoError(t, s.SyncWAL())

			// None of this is synced, so none of it may survive.
			fillPartition(t, s, p, tt.synced+1, tt.synced+tt.unsynced)
			require.NoError(t, s.TruncateLog(p, tt.synced))
			require.NoError(t, s.SetVersion(p, 4, 3, false))
			require.NoError(t, s.ForgetDedup(p, []DedupID{{1, 1}, {2, 2}}))
			fillPartition(t, s, p+1, 1, 3)

			crashed := openTest(t, crashOpts(fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})))
			all, err := crashed.RecoverPartitions()
			require.NoError(t, err)
			require.Len(t, all, 1, "the unsynced partition is gone")
			st := all[0]
			modelHistory(p, tt.synced).check(t, crashed, st, tt.truncated)
			require.Equal(t, PartitionState{Partition: p, Ver: 3, Epoch: 2, Unsynced: true},
				PartitionState{Partition: st.Partition, Ver: st.Ver, Epoch: st.Epoch, Unsynced: st.Unsynced})
			seq, err := crashed.AppliedSeq(p)
			require.NoError(t, err)
			require.Equal(t, tt.synced, seq)
		})
	}
}

// TestCrashTornTail crashes with part of the unsynced WAL kept (random 4 KiB
// blocks, as a torn write leaves it): pebble replays a prefix of whole
// batches, so the store recovers some prefix of the history with a
// contiguous log. Even keeping 100% of the file may lose a tail: the WAL
// writer buffers unsynced commits in memory. The entries it lost are then re-applied in part (a
// predecessor's resend), synced, and a second crash recovers exactly them.
func TestCrashTornTail(t *testing.T) {
	const p, synced, total = 7, 30, 400
	for _, pct := range []int{10, 50, 90, 100} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("keep=%d%%/seed=%d", pct, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(pct)))
				fs := vfs.NewCrashableMem()
				s := openTest(t, crashOpts(fs))
				fillPartition(t, s, p, 1, synced)
				require.NoError(t, s.TruncateLog(p, 10))
				require.NoError(t, s.SyncWAL())
				fillPartition(t, s, p, synced+1, total)

				fs1 := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
				s1 := openTest(t, crashOpts(fs1))
				st := recoverOne(t, s1, p)
				require.GreaterOrEqual(t, st.Applied, uint64(synced))
				require.LessOrEqual(t, st.Applied, uint64(total))
				t.Logf("recovered %d of %d entries", st.Applied, total)
				modelHistory(p, st.Applied).check(t, s1, st, 10)

				// Re-apply part of what was lost, sync it, lose the rest again.
				upto := st.Applied + rng.Uint64N(total-st.Applied+1)
				fillPartition(t, s1, p, st.Applied+1, upto)
				require.NoError(t, s1.SyncWAL())
				fillPartition(t, s1, p, upto+1, upto+5)

				s2 := openTest(t, crashOpts(fs1.CrashClone(vfs.CrashCloneCfg{})))
				modelHistory(p, upto).check(t, s2, recoverOne(t, s2, p), 10)
			})
		}
	}
}
