package storage

import (
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// countRawSyncs counts the raw fdatasync calls until the test ends.
func countRawSyncs(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := rawFdatasync
	rawFdatasync = func(fd uintptr) unix.Errno { n.Add(1); return orig(fd) }
	t.Cleanup(func() { rawFdatasync = orig })
	return &n
}

// withProcs runs the test with GOMAXPROCS n.
func withProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

func TestRawSyncWrapsOnlyWAL(t *testing.T) {
	withProcs(t, 2)
	syncs := countRawSyncs(t)
	dir := t.TempDir()
	fs := withRawWALSync(nil)

	wal, err := fs.Create(filepath.Join(dir, "000001.log"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.IsType(t, rawSyncFile{}, wal)
	_, err = wal.Write([]byte("record"))
	require.NoError(t, err)
	require.NoError(t, wal.SyncData())
	require.EqualValues(t, 1, syncs.Load())
	require.NoError(t, wal.Close())
	err = wal.SyncData()
	require.ErrorIs(t, err, unix.EBADF, "a closed file's sync fails, it does not pass")
	require.ErrorContains(t, err, "fdatasync "+filepath.Join(dir, "000001.log"))

	// pebble recycles WAL files: the reused one syncs raw too.
	reused, err := fs.ReuseForWrite(filepath.Join(dir, "000001.log"), filepath.Join(dir, "000002.log"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.IsType(t, rawSyncFile{}, reused)
	require.NoError(t, reused.Close())

	sst, err := fs.Create(filepath.Join(dir, "000003.sst"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, isRaw := sst.(rawSyncFile)
	require.False(t, isRaw, "tables sync through the runtime")
	require.NoError(t, sst.SyncData())
	require.NoError(t, sst.Close())
	require.EqualValues(t, 2, syncs.Load(), "the WAL's two syncs only")
}

func TestRawSyncOneProcessor(t *testing.T) {
	withProcs(t, 1)
	syncs := countRawSyncs(t)
	wal, err := withRawWALSync(nil).Create(filepath.Join(t.TempDir(), "000001.log"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	defer wal.Close()
	require.NoError(t, wal.SyncData())
	require.Zero(t, syncs.Load(), "with one processor a raw sync would stop every goroutine")
}

// TestRawSyncStore checks the wiring: a synced store's writes sync raw on
// the OS's filesystem, never on another (the lose-unsynced filesystem
// counts its syncs itself), and not when the option is off.
func TestRawSyncStore(t *testing.T) {
	withProcs(t, 2)
	for _, tt := range []struct {
		name string
		fs   vfs.FS
		raw  bool
		want bool
	}{
		{"os filesystem", nil, true, true},
		{"option off", nil, false, false},
		{"other filesystem", vfs.Default, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			syncs := countRawSyncs(t)
			dir := t.TempDir()
			s, err := Open(dir, Options{FS: tt.fs, Sync: true, RawWALSync: tt.raw, Tune: func(o *pebble.Options) {
				o.DisableAutomaticCompactions = true
			}})
			require.NoError(t, err)
			put(t, s, 1, 1, "n", "k", "v", 0)
			require.NoError(t, s.SyncWAL())
			require.NoError(t, s.Close())
			require.Equal(t, tt.want, syncs.Load() > 0, "raw syncs: %d", syncs.Load())
			_, err = os.Stat(dir)
			require.NoError(t, err)
		})
	}
}

// TestRawWALWrite: a WAL file's raw writes land in order, whole, and a
// write to a closed file fails naming it.
func TestRawWALWrite(t *testing.T) {
	withProcs(t, 2)
	dir := t.TempDir()
	name := filepath.Join(dir, "000001.log")
	wal, err := withRawWALSync(nil).Create(name, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	want := append([]byte("head:"), big...)
	for _, p := range [][]byte{[]byte("head:"), big} {
		n, err := wal.Write(p)
		require.NoError(t, err)
		require.Equal(t, len(p), n)
	}
	require.NoError(t, wal.SyncData())
	require.NoError(t, wal.Close())
	got, err := os.ReadFile(name)
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = wal.Write([]byte("late"))
	require.ErrorIs(t, err, unix.EBADF)
	require.ErrorContains(t, err, "write "+name)
}
