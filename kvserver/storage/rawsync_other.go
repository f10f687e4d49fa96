//go:build !linux

package storage

import "github.com/cockroachdb/pebble/v2/vfs"

// withRawWALSync is a no-op off Linux: syncs go through the runtime.
func withRawWALSync(fs vfs.FS) vfs.FS { return fs }
