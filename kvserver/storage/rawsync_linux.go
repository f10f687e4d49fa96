package storage

import (
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// rawSyncFS hands out WAL files whose SyncData is a raw fdatasync and
// whose Write is a raw write (see Options.RawWALSync); every other file
// and call goes to fs unchanged.
//
// Why: a write's fsync blocks for most of a millisecond. Through the Go
// runtime's syscall path the processor of the blocked thread is taken
// over by the runtime's monitor (sysmon) after 20µs when other goroutines
// wait, which then keeps polling every 20µs, hands the processor to
// another thread (a wake-up) and, when the sync returns, parks a thread
// again: several context switches per fsync, and hundreds
// of fsyncs a second per server. A raw call keeps its processor; the
// other processors run everything else meanwhile. Measured with three
// servers (e2e/peers, W, eight alternating pairs): context switches per
// write about 6 -> 3.2-4.2 in every pair, server CPU per write 0.86x and
// writes/s 1.14x at the median (README, Performance).
//
// The WAL's writes are raw too: each went through the same path, which
// also wakes sysmon from its sleep whenever a server was idle for a
// moment, to poll every 20µs for a millisecond or more (kvserver's raw
// sockets, rawio_linux.go, say what that cost).
//
// The price: the Go runtime cannot stop a thread inside a raw call, so a
// garbage collection's stop-the-world waits for the sync in progress, and
// with one processor nothing else would run during a sync; with fewer than
// two processors the sync goes through the runtime as usual.
type rawSyncFS struct{ vfs.FS }

type rawSyncFile struct {
	vfs.File
	name string
}

// isWAL reports whether name is a pebble WAL file (NNNNNN.log).
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs rawSyncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isWAL(name) || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	return rawSyncFile{File: f, name: name}, nil
}

func (fs rawSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs rawSyncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

func (fs rawSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// SyncData is fdatasync(2) without the runtime's syscall bookkeeping.
func (f rawSyncFile) SyncData() error {
	if runtime.GOMAXPROCS(0) < 2 {
		return f.File.SyncData()
	}
	for {
		switch errno := rawFdatasync(f.Fd()); errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return &os.PathError{Op: "fdatasync", Path: f.name, Err: errno}
		}
	}
}

// Write is write(2) without the runtime's syscall bookkeeping.
func (f rawSyncFile) Write(p []byte) (int, error) {
	if runtime.GOMAXPROCS(0) < 2 {
		return f.File.Write(p)
	}
	n := 0
	for n < len(p) {
		m, _, errno := unix.RawSyscall(unix.SYS_WRITE, f.Fd(), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch errno {
		case 0:
			n += int(m)
		case unix.EINTR:
		default:
			return n, &os.PathError{Op: "write", Path: f.name, Err: errno}
		}
	}
	return n, nil
}

// rawFdatasync is the raw call (a variable: tests count its calls).
var rawFdatasync = func(fd uintptr) unix.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_FDATASYNC, fd, 0, 0)
	return errno
}

// withRawWALSync returns fs (nil: the OS's) with raw WAL syncs.
func withRawWALSync(fs vfs.FS) vfs.FS {
	if fs == nil {
		fs = vfs.Default
	}
	return rawSyncFS{fs}
}
