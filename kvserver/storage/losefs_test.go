package storage

import (
	"bufio"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
)

// newLoseFS runs NewLoseUnsyncedFS on inner's "db" and closes it at cleanup
// (after the stores opened later, whose cleanups run first).
func newLoseFS(t *testing.T, inner vfs.FS, dir string) (*LoseUnsyncedFS, Rollback) {
	t.Helper()
	fs, rb, err := NewLoseUnsyncedFS(inner, dir)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, fs.Close()) })
	t.Logf("rolled back %d bytes in %v", rb.Bytes, rb.Files)
	return fs, rb
}

// killed is what a kill -9 leaves of a MemFS: everything written, synced
// or not (the page cache survives the process).
func killed(fs *vfs.MemFS) *vfs.MemFS {
	return fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
}

// powerCut is what a power cut leaves of a MemFS: only what was synced.
func powerCut(fs *vfs.MemFS) *vfs.MemFS { return fs.CrashClone(vfs.CrashCloneCfg{}) }

// churnOpts are crashOpts with a small memtable, so a few thousand entries
// rotate and recycle WALs, flush and compact: every kind of file pebble
// writes is in play when the process dies. wals counts the WALs created.
func churnOpts(fs vfs.FS, wals *atomic.Int64) Options {
	o := crashOpts(fs)
	o.Tune = func(po *pebble.Options) {
		po.MemTableSize = 256 << 10
		po.EventListener = &pebble.EventListener{WALCreated: func(pebble.WALCreateInfo) { wals.Add(1) }}
	}
	return o
}

// appliedOn opens a plain store on fs and returns partition p's applied seq.
func appliedOn(t *testing.T, fs vfs.FS, p int) uint64 {
	t.Helper()
	s, err := Open("db", crashOpts(fs))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	return recoverOne(t, s, p).Applied
}

// TestLoseUnsyncedKeepsExactlySynced writes synced and unsynced entries
// through LoseUnsyncedFS and kills the process (the FS keeps everything
// written): after NewLoseUnsyncedFS the store holds exactly the synced
// entries, as after a power cut (vfs.NewCrashableMem's crash clone, the
// oracle), although the page cache held unsynced ones. Twice, the second
// time on the recovered store (a journal of a store that was rolled back).
func TestLoseUnsyncedKeepsExactlySynced(t *testing.T) {
	const p = 5
	defer func(n int64) { loseJournalMax = n }(loseJournalMax)
	loseJournalMax = 4 << 10 // rewrite the journal often too

	mem := vfs.NewCrashableMem()
	var synced uint64
	for gen := 1; gen <= 3; gen++ {
		fs, rb := newLoseFS(t, mem, "db")
		var wals atomic.Int64
		s := openTest(t, churnOpts(fs, &wals))
		if gen > 1 {
			require.Positive(t, rb.Bytes, "generation %d: the kill left unsynced bytes to drop", gen)
			require.True(t, hasWAL(rb.Files), "generation %d: the WAL's unsynced tail was cut: %v", gen, rb.Files)
			modelHistory(p, synced).check(t, s, recoverOne(t, s, p), 0)
		}
		if gen == 3 {
			break
		}
		for range 3 {
			fillPartition(t, s, p, synced+1, synced+1000)
			require.NoError(t, s.SyncWAL())
			synced += 1000
		}
		synced = writeUnsynced(t, s, p, synced, &wals, func(n uint64) bool { return appliedOn(t, killed(mem), p) > n })
		oracle := powerCut(mem)
		mem = killed(mem)

		cut, err := Open("db", crashOpts(oracle))
		require.NoError(t, err)
		modelHistory(p, synced).check(t, cut, recoverOne(t, cut, p), 0)
		require.NoError(t, cut.Close())
	}
}

// writeUnsynced applies entries after synced to p without syncing until
// inFile says some reached the WAL file (pebble writes a WAL block once it is full, or
// at a sync), and returns the new synced count. A memtable rotation closes,
// and so syncs, the WAL holding them, making them durable: then it syncs
// them and starts over.
func writeUnsynced(t *testing.T, s *Store, p int, synced uint64, wals *atomic.Int64, inFile func(synced uint64) bool) uint64 {
	t.Helper()
	for range 10 {
		rotations, n := wals.Load(), synced
		for !inFile(synced) {
			require.Less(t, n, synced+2000, "unsynced entries reach the WAL file")
			fillPartition(t, s, p, n+1, n+20)
			n += 20
		}
		if wals.Load() == rotations {
			t.Logf("%d entries synced, %d written after them", synced, n-synced)
			return synced
		}
		require.NoError(t, s.SyncWAL())
		synced = n
	}
	t.Fatal("the WAL rotated in each of 10 tries")
	return 0
}

func hasWAL(files []string) bool {
	for _, f := range files {
		if strings.HasSuffix(f, ".log") {
			return true
		}
	}
	return false
}

// TestLoseUnsyncedFiles checks the rollback file by file: contents go back
// to the last sync, names stay as they were left.
func TestLoseUnsyncedFiles(t *testing.T) {
	mem := vfs.NewCrashableMem()
	require.NoError(t, mem.MkdirAll("pre", 0o755))
	write := func(f vfs.File, s string) {
		_, err := f.Write([]byte(s))
		require.NoError(t, err)
	}
	pre, err := mem.Create("pre/old", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	write(pre, "durable before")
	require.NoError(t, pre.Close())

	fs, _ := newLoseFS(t, mem, "pre")
	create := func(name string) vfs.File {
		f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		return f
	}
	a := create("pre/a")
	write(a, "synced")
	require.NoError(t, a.Sync())
	write(a, "+lost")
	require.NoError(t, fs.Rename("pre/a", "pre/b")) // b is a's file

	c := create("pre/c")
	write(c, "never synced")

	d := create("pre/d")
	write(d, "0123456789")
	full, err := d.SyncTo(4)
	require.NoError(t, err)
	require.False(t, full, "MemFS syncs nothing on SyncTo")
	require.NoError(t, d.SyncData())
	write(d, "lost")
	require.NoError(t, fs.Link("pre/d", "pre/e"))

	// A recycled log comes back as a new file, so old bytes are not kept.
	r, err := fs.ReuseForWrite("pre/old", "pre/recycled", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	write(r, "new")
	require.NoError(t, r.Sync())

	_, err = r.WriteAt([]byte("x"), 0)
	require.ErrorIs(t, err, errLoseUnsupported)
	_, err = fs.OpenReadWrite("pre/b", vfs.WriteCategoryUnspecified)
	require.ErrorIs(t, err, errLoseUnsupported)

	after, rb := newLoseFS(t, killed(mem), "pre")
	require.Equal(t, []string{"b", "c", "d", "e"}, rb.Files)
	for name, want := range map[string]string{"b": "synced", "c": "", "d": "0123456789", "e": "0123456789", "recycled": "new"} {
		f, err := after.Open("pre/" + name)
		require.NoError(t, err, name)
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.Equal(t, want, string(got), name)
	}
	for _, gone := range []string{"pre/a", "pre/old"} {
		_, err := after.Stat(gone)
		require.True(t, notExist(err), "%s: %v", gone, err)
	}
}

// childDirEnv tells the test binary to run as TestLoseUnsyncedKill9's store
// process in the named directory.
const childDirEnv = "ECSKV_TEST_LOSEFS_CHILD_DIR"

// Entries of TestLoseUnsyncedKill9: synced, then unsynced ones after them.
const (
	kill9Partition = 9
	kill9Synced    = 500
	kill9Total     = 800
)

// TestLoseUnsyncedKill9 is the option against a real process: a child
// process applies entries through LoseUnsyncedFS on the OS's files, syncs
// some, and is killed -9 with unsynced ones in its WAL file. Opened
// without the option (a copy), the store has unsynced entries: a kill
// alone loses nothing. Opened with it, only the synced entries are left.
// So a cluster that acknowledged a write before every copy was synced
// would lose it under the option.
func TestLoseUnsyncedKill9(t *testing.T) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		kill9Child(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoseUnsyncedKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- ""
				_, _ = io.Copy(io.Discard, out)
				return
			}
			lines = append(lines, sc.Text())
		}
		ready <- strings.Join(lines, "\n")
	}()
	select {
	case failed := <-ready:
		if failed != "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child exited before it was ready:\n%s", failed)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child not ready within 60s")
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	plain := copyDir(t, dir)
	s, err := Open(plain, crashOpts(vfs.Default))
	require.NoError(t, err)
	kept := recoverOne(t, s, kill9Partition).Applied
	require.NoError(t, s.Close())
	require.Greater(t, kept, uint64(kill9Synced), "kill -9 alone keeps unsynced entries")
	t.Logf("kill -9 alone kept %d of %d entries, %d synced", kept, kill9Total, kill9Synced)

	fs, rb := newLoseFS(t, vfs.Default, dir)
	require.Positive(t, rb.Bytes)
	require.True(t, hasWAL(rb.Files), "the WAL's unsynced tail was cut: %v", rb.Files)
	s, err = Open(dir, crashOpts(fs))
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	modelHistory(kill9Partition, kill9Synced).check(t, s, recoverOne(t, s, kill9Partition), 0)
}

// kill9Child is TestLoseUnsyncedKill9's store process: it prints READY once
// unsynced entries are in its WAL file, and waits to be killed.
func kill9Child(t *testing.T, dir string) {
	fs, _, err := NewLoseUnsyncedFS(vfs.Default, dir)
	require.NoError(t, err)
	s, err := Open(dir, crashOpts(fs))
	require.NoError(t, err)
	fillPartition(t, s, kill9Partition, 1, kill9Synced)
	require.NoError(t, s.SyncWAL())
	before := walBytes(t, dir)
	fillPartition(t, s, kill9Partition, kill9Synced+1, kill9Total)
	require.True(t, testutil.WaitUntil(30*time.Second, time.Millisecond, func() bool { return walBytes(t, dir) > before }),
		"unsynced entries reach the WAL file")
	os.Stdout.WriteString("READY\n")
	select {}
}

// walBytes sums the sizes of the WAL files in dir.
func walBytes(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			fi, err := e.Info()
			require.NoError(t, err)
			n += fi.Size()
		}
	}
	return n
}

// copyDir copies the files of dir into a new temp dir.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o644))
	}
	return to
}
