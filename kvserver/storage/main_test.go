package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testOptions returns in-memory, unsynced options with a cache.
func testOptions() Options {
	return Options{FS: vfs.NewMem(), CacheEntries: 1000}
}

// openTest opens a store with opts and closes it at cleanup.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open("db", opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// put applies a single put with seq and returns its existed flag.
func put(t testing.TB, s *Store, p int, seq uint64, ns, key, val string, expiry int64) bool {
	t.Helper()
	ex, err := s.Apply(p, seq, []Op{{Kind: OpPut, NS: []byte(ns), Key: []byte(key), Value: []byte(val), ExpiryMs: expiry}}, 0)
	require.NoError(t, err)
	return ex[0]
}

// get reads key at nowMs and returns its value and presence.
func get(t testing.TB, s *Store, p int, ns, key string, nowMs int64) (string, bool) {
	t.Helper()
	r, ok, err := s.Get(p, []byte(ns), []byte(key), nowMs)
	require.NoError(t, err)
	return string(r.Value), ok
}
