package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// LoseUnsyncedEnv, set to 1 in a kvserver's environment, opens its store
// through LoseUnsyncedFS: TEST ONLY. A kill -9 then costs what a power cut
// would, so end-to-end tests can check that every acknowledged write was
// synced.
const LoseUnsyncedEnv = "ECSKV_TEST_LOSE_UNSYNCED"

// Files of LoseUnsyncedFS in the data dir; pebble ignores names it cannot parse.
const (
	loseJournalName = "ecskv-test-unsynced.journal"
	loseTmpName     = "ecskv-test-unsynced.tmp"
)

// loseJournalMax is the journal size past which it is rewritten as a
// snapshot of the files it tracks (a line per WAL sync adds up); tests
// lower it.
var loseJournalMax int64 = 1 << 20

// errLoseUnsupported is returned for the writes LoseUnsyncedFS cannot roll
// back (in-place ones); pebble makes none with ecskv's options.
var errLoseUnsupported = errors.New("storage: in-place writes are not supported when losing unsynced data")

// LoseUnsyncedFS makes a process kill behave like a power cut, for tests.
// A kill -9 keeps the page cache, so everything a process wrote survives it;
// this FS journals, for each file it creates, the size it had at its last
// sync, and NewLoseUnsyncedFS, run before the store opens, cuts every such
// file back to that size: whatever was written and not synced is lost.
//
// File contents are all that roll back. Names (create, rename, remove,
// link) are kept as the process left them, which is what a filesystem whose
// metadata journal committed just before the cut shows; pebble syncs a
// file before it names it in its manifest or renames it into place, so a
// never-synced file is cut to empty, not removed (pebble's marker files
// are empty and never synced: only their names count). Files are assumed
// to be written front to back: in-place writes (WriteAt, OpenReadWrite)
// fail, and ReuseForWrite (WAL recycling) creates a new file instead,
// which its contract allows.
//
// The journal needs no fsync: it only has to survive the kill of the
// process, not of the machine.
type LoseUnsyncedFS struct {
	vfs.FS
	root string

	mu          sync.Mutex // guards the fields below
	journal     vfs.File
	journalSize int64
	// synced maps a tracked file (by its name under root) to the size it
	// was last synced at; a file missing here was durable when tracking
	// began.
	synced map[string]int64
}

// Rollback is what NewLoseUnsyncedFS cut away.
type Rollback struct {
	Files []string // names under root, sorted
	Bytes int64
}

// NewLoseUnsyncedFS cuts every file under dir back to what the previous
// LoseUnsyncedFS on dir synced, then tracks inner's writes under dir from
// an empty journal (everything left now counts as synced).
func NewLoseUnsyncedFS(inner vfs.FS, dir string) (*LoseUnsyncedFS, Rollback, error) {
	fs := &LoseUnsyncedFS{FS: inner, root: filepath.Clean(dir), synced: map[string]int64{}}
	if err := inner.MkdirAll(fs.root, 0o755); err != nil {
		return nil, Rollback{}, fmt.Errorf("storage: lose unsynced: %w", err)
	}
	rb, err := fs.rollBack()
	if err != nil {
		return nil, rb, fmt.Errorf("storage: lose unsynced: roll back %s: %w", dir, err)
	}
	if fs.journal, err = inner.Create(fs.path(loseJournalName), vfs.WriteCategoryUnspecified); err != nil {
		return nil, rb, fmt.Errorf("storage: lose unsynced: %w", err)
	}
	return fs, rb, nil
}

// OpenLoseUnsynced returns the OS filesystem with unsynced data under dir
// lost at each start (see LoseUnsyncedFS), and says so loudly.
func OpenLoseUnsynced(dir string, lg *zap.Logger) (vfs.FS, error) {
	fs, rb, err := NewLoseUnsyncedFS(vfs.Default, dir)
	if err != nil {
		return nil, err
	}
	lg.Warn("TEST ONLY: "+LoseUnsyncedEnv+"=1: storage drops whatever was written and not synced "+
		"when the process stops, as a power cut would; never run a real cluster with it",
		zap.String("dir", dir), zap.Int("files-cut", len(rb.Files)), zap.Int64("bytes-dropped", rb.Bytes),
		zap.Strings("files", rb.Files))
	return fs, nil
}

// Close closes the journal; the FS must not be used after it.
func (fs *LoseUnsyncedFS) Close() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.journal.Close()
}

// Unwrap implements vfs.FS.
func (fs *LoseUnsyncedFS) Unwrap() vfs.FS { return fs.FS }

// Create implements vfs.FS: the new file counts as synced at size 0.
func (fs *LoseUnsyncedFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	key := fs.key(name)
	// Journal first: a file that exists must never be missing from it.
	if err := fs.record(func() { fs.synced[key] = 0 }, "c", key); err != nil {
		return nil, err
	}
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &loseFile{File: f, fs: fs, key: key}, nil
}

// ReuseForWrite implements vfs.FS by removing oldname and creating newname:
// a recycled file is overwritten in place, and its old bytes past the
// synced size would be taken for synced ones.
func (fs *LoseUnsyncedFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.Remove(oldname); err != nil && !notExist(err) {
		return nil, err
	}
	return fs.Create(newname, category)
}

// OpenReadWrite implements vfs.FS; it is not supported (see errLoseUnsupported).
func (fs *LoseUnsyncedFS) OpenReadWrite(name string, _ vfs.DiskWriteCategory, _ ...vfs.OpenOption) (vfs.File, error) {
	return nil, fmt.Errorf("%w: OpenReadWrite %s", errLoseUnsupported, name)
}

// Rename implements vfs.FS: newname takes oldname's synced size.
func (fs *LoseUnsyncedFS) Rename(oldname, newname string) error {
	return fs.move("r", oldname, newname, fs.FS.Rename)
}

// Link implements vfs.FS: newname takes oldname's synced size.
func (fs *LoseUnsyncedFS) Link(oldname, newname string) error {
	return fs.move("l", oldname, newname, fs.FS.Link)
}

// move journals and runs a rename ("r") or link ("l").
func (fs *LoseUnsyncedFS) move(op, oldname, newname string, do func(string, string) error) error {
	from, to := fs.key(oldname), fs.key(newname)
	if err := fs.record(func() {}, op, from, to); err != nil {
		return err
	}
	if err := do(oldname, newname); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	moveSynced(fs.synced, from, to)
	if op == "r" {
		delete(fs.synced, from)
	}
	return nil
}

// moveSynced gives to the synced size of from (untracked: durable).
func moveSynced(synced map[string]int64, from, to string) {
	if n, ok := synced[from]; ok {
		synced[to] = n
	} else {
		delete(synced, to)
	}
}

// Remove implements vfs.FS. A removal stays done after a crash, so the
// journal needs no record of it; the file is only forgotten.
func (fs *LoseUnsyncedFS) Remove(name string) error {
	if err := fs.FS.Remove(name); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.synced, fs.key(name))
	return nil
}

// key names a file by its path under root (or by its clean path outside).
func (fs *LoseUnsyncedFS) key(name string) string {
	name = filepath.Clean(name)
	if rel, err := filepath.Rel(fs.root, name); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return name
}

// path is key's inverse.
func (fs *LoseUnsyncedFS) path(key string) string {
	if filepath.IsAbs(key) {
		return key
	}
	return filepath.Join(fs.root, key)
}

// sync records that the file key holds size synced bytes.
func (fs *LoseUnsyncedFS) sync(key string, size int64) error {
	fs.mu.Lock()
	n, ok := fs.synced[key]
	fs.mu.Unlock()
	if ok && n >= size {
		return nil
	}
	return fs.record(func() { fs.synced[key] = max(fs.synced[key], size) }, "s", strconv.FormatInt(size, 10), key)
}

// record appends one journal line (op and its tab-separated fields) and
// applies update to the tracked sizes, under mu; a journal past
// loseJournalMax is rewritten first.
func (fs *LoseUnsyncedFS) record(update func(), op string, fields ...string) error {
	line := op
	for _, f := range fields {
		if strings.ContainsAny(f, "\t\n") {
			return fmt.Errorf("storage: lose unsynced: file name %q has a tab or newline", f)
		}
		line += "\t" + f
	}
	line += "\n"
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.journalSize > loseJournalMax {
		if err := fs.compactLocked(); err != nil {
			return err
		}
	}
	n, err := fs.journal.Write([]byte(line))
	fs.journalSize += int64(n)
	if err != nil {
		return fmt.Errorf("storage: lose unsynced: journal: %w", err)
	}
	update()
	return nil
}

// compactLocked replaces the journal by one line per tracked file. The
// rename is atomic in the page cache, which is all a kill can observe.
func (fs *LoseUnsyncedFS) compactLocked() error {
	var b bytes.Buffer
	for _, key := range slices.Sorted(maps.Keys(fs.synced)) {
		fmt.Fprintf(&b, "s\t%d\t%s\n", fs.synced[key], key)
	}
	f, err := fs.FS.Create(fs.path(loseTmpName), vfs.WriteCategoryUnspecified)
	if err == nil {
		_, err = f.Write(b.Bytes())
		if err == nil {
			err = fs.FS.Rename(fs.path(loseTmpName), fs.path(loseJournalName))
		}
		if err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("storage: lose unsynced: rewrite journal: %w", err)
	}
	_ = fs.journal.Close()
	fs.journal, fs.journalSize = f, int64(b.Len())
	return nil
}

// rollBack replays the journal and cuts each tracked file to its synced size.
func (fs *LoseUnsyncedFS) rollBack() (Rollback, error) {
	var rb Rollback
	// A kill during an earlier rollback or rewrite may leave the temp file.
	if err := fs.FS.Remove(fs.path(loseTmpName)); err != nil && !notExist(err) {
		return rb, err
	}
	synced, err := fs.readJournal()
	if err != nil {
		return rb, err
	}
	for _, key := range slices.Sorted(maps.Keys(synced)) {
		fi, err := fs.FS.Stat(fs.path(key))
		if notExist(err) {
			continue
		}
		if err != nil {
			return rb, err
		}
		if fi.Size() <= synced[key] {
			continue
		}
		if err := fs.cut(fs.path(key), synced[key]); err != nil {
			return rb, fmt.Errorf("cut %s to %d bytes: %w", key, synced[key], err)
		}
		rb.Files = append(rb.Files, key)
		rb.Bytes += fi.Size() - synced[key]
	}
	return rb, nil
}

// readJournal returns the synced size of every file the journal tracks.
func (fs *LoseUnsyncedFS) readJournal() (map[string]int64, error) {
	synced := map[string]int64{}
	f, err := fs.FS.Open(fs.path(loseJournalName))
	if notExist(err) {
		return synced, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			return synced, nil // a line without its newline was never written whole
		}
		if err != nil {
			return nil, err
		}
		if err := replay(synced, strings.Split(strings.TrimSuffix(line, "\n"), "\t")); err != nil {
			return nil, fmt.Errorf("journal line %q: %w", line, err)
		}
	}
}

// replay applies one journal record. A rename or link is journaled before
// it is made, so the old name keeps its size too: if the kill came first,
// the file is still there under it.
func replay(synced map[string]int64, f []string) error {
	switch {
	case len(f) == 2 && f[0] == "c":
		synced[f[1]] = 0
	case len(f) == 3 && f[0] == "s":
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return err
		}
		synced[f[2]] = n
	case len(f) == 3 && (f[0] == "r" || f[0] == "l"):
		moveSynced(synced, f[1], f[2])
	default:
		return errors.New("malformed")
	}
	return nil
}

// cut keeps the first size bytes of the file at path, by copying them to a
// new file renamed over it (vfs has no truncate).
func (fs *LoseUnsyncedFS) cut(path string, size int64) error {
	src, err := fs.FS.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := fs.path(loseTmpName)
	dst, err := fs.FS.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.LimitReader(src, size)); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return fs.FS.Rename(tmp, path)
}

// loseFile tracks how much of a created file was written, and journals
// that size when a sync makes it durable.
type loseFile struct {
	vfs.File
	fs      *LoseUnsyncedFS
	key     string
	written atomic.Int64 // written front to back: the file's size
}

func (f *loseFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.written.Add(int64(n))
	return n, err
}

func (f *loseFile) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%w: WriteAt %s", errLoseUnsupported, f.key)
}

func (f *loseFile) Sync() error {
	n := f.written.Load()
	if err := f.File.Sync(); err != nil {
		return err
	}
	return f.fs.sync(f.key, n)
}

func (f *loseFile) SyncData() error {
	n := f.written.Load()
	if err := f.File.SyncData(); err != nil {
		return err
	}
	return f.fs.sync(f.key, n)
}

// SyncTo journals only a full sync: a partial one promises nothing.
func (f *loseFile) SyncTo(length int64) (bool, error) {
	n := f.written.Load()
	full, err := f.File.SyncTo(length)
	if err != nil || !full {
		return full, err
	}
	return true, f.fs.sync(f.key, n)
}

var _ vfs.FS = (*LoseUnsyncedFS)(nil)

func notExist(err error) bool { return errors.Is(err, iofs.ErrNotExist) }
