package storage

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

func TestCacheHitsAndMisses(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", Options{FS: fs, CacheEntries: 10})
	require.NoError(t, err)
	put(t, s, 1, 1, "n", "k", "v", 0)
	require.NoError(t, s.Close())

	s = openTest(t, Options{FS: fs, CacheEntries: 10}) // reopened: cold cache
	steps := []struct {
		name         string
		key          string
		hits, misses uint64
	}{
		{"cold read misses", "k", 0, 1},
		{"second read hits", "k", 1, 1},
		{"absent key misses", "absent", 1, 2},
		{"absent key is not remembered", "absent", 1, 3},
	}
	for _, st := range steps {
		get(t, s, 1, "n", st.key, 0)
		h, m := s.CacheStats()
		require.Equal(t, [2]uint64{st.hits, st.misses}, [2]uint64{h, m}, st.name)
	}
	put(t, s, 1, 2, "n", "w", "new", 0) // write-through
	v, _ := get(t, s, 1, "n", "w", 0)
	require.Equal(t, "new", v)
	h, _ := s.CacheStats()
	require.Equal(t, uint64(2), h, "a just-written key is served from the cache")
}

func TestCacheNeverStale(t *testing.T) {
	tests := []struct {
		name    string
		act     func(t *testing.T, s *Store)
		want    string
		present bool
	}{
		{"overwrite", func(t *testing.T, s *Store) { put(t, s, 1, 2, "n", "k", "v2", 0) }, "v2", true},
		{"delete", func(t *testing.T, s *Store) {
			_, err := s.Apply(1, 2, []Op{{Kind: OpDelete, NS: []byte("n"), Key: []byte("k")}}, 0)
			require.NoError(t, err)
		}, "", false},
		{"drop", func(t *testing.T, s *Store) { require.NoError(t, s.DropPartition(1)) }, "", false},
		{"ingest", func(t *testing.T, s *Store) {
			e := Entry{NS: []byte("n"), Key: []byte("k"), Record: Record{Seq: 9, Value: []byte("v9")}}
			require.NoError(t, s.Ingest(1, []Entry{e}, 9))
		}, "v9", true},
		{"expire", func(t *testing.T, s *Store) { put(t, s, 1, 2, "n", "k", "v2", 50) }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testOptions())
			put(t, s, 1, 1, "n", "k", "v1", 0)
			v, ok := get(t, s, 1, "n", "k", 100)
			require.True(t, ok)
			require.Equal(t, "v1", v)
			tt.act(t, s)
			v, ok = get(t, s, 1, "n", "k", 100)
			require.Equal(t, tt.present, ok)
			require.Equal(t, tt.want, v)
		})
	}
}

func TestCacheByteBudget(t *testing.T) {
	s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: 1000, CacheBytes: 100})
	keyLen := len(EncodeKey(1, []byte("n"), []byte("k0")))
	val := strings.Repeat("x", 30-keyLen) // 30 bytes per entry
	for i := range 10 {
		put(t, s, 1, uint64(i+1), "n", fmt.Sprint("k", i), val, 0)
	}
	n, size := s.cache.len()
	require.Equal(t, 3, n)
	require.Equal(t, int64(90), size)
	hits0, _ := s.CacheStats()
	for i := 9; i >= 0; i-- { // every key still readable; only the last 3 from the cache
		v, ok := get(t, s, 1, "n", fmt.Sprint("k", i), 0)
		require.True(t, ok)
		require.Equal(t, val, v)
	}
	hits, _ := s.CacheStats()
	require.Equal(t, hits0+3, hits)

	// An entry over the whole budget is not cached and evicts its old version.
	put(t, s, 1, 11, "n", "k9", strings.Repeat("y", 200), 0)
	_, ok := s.cache.peek(EncodeKey(1, []byte("n"), []byte("k9")))
	require.False(t, ok)
	v, _ := get(t, s, 1, "n", "k9", 0)
	require.Len(t, v, 200)
	_, size = s.cache.len()
	require.LessOrEqual(t, size, int64(100))
}

func TestCacheEntryLimitAndDisabled(t *testing.T) {
	s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: 2})
	for i := range 5 {
		put(t, s, 1, uint64(i+1), "n", fmt.Sprint("k", i), "v", 0)
	}
	n, _ := s.cache.len()
	require.Equal(t, 2, n)

	off := openTest(t, Options{FS: vfs.NewMem()})
	put(t, off, 1, 1, "n", "k", "v", 0)
	v, ok := get(t, off, 1, "n", "k", 0)
	require.True(t, ok)
	require.Equal(t, "v", v)
	h, m := off.CacheStats()
	require.Zero(t, h+m)
	off.InvalidateCache(1) // no-op, no panic
}

func TestInvalidateCacheDropsOnlyThatPartition(t *testing.T) {
	s := openTest(t, testOptions())
	for p := 1; p <= 3; p++ {
		put(t, s, p, 1, "n", "a", "v", 0)
		put(t, s, p, 2, "n", "b", "v", 0)
	}
	s.InvalidateCache(2)
	s.InvalidateCache(-1) // ignored
	n, _ := s.cache.len()
	require.Equal(t, 4, n)
	for _, k := range []string{"a", "b"} {
		_, ok := s.cache.peek(EncodeKey(2, []byte("n"), []byte(k)))
		require.False(t, ok)
		_, ok = s.cache.peek(EncodeKey(3, []byte("n"), []byte(k)))
		require.True(t, ok)
	}
	_, ok := get(t, s, 2, "n", "a", 0)
	require.True(t, ok, "invalidation drops the cache, not the data")
}

// TestCacheFillFencedByWrite drives the race a reader can lose against a writer:
// the reader misses, the writer commits and updates, then the reader fills
// with what it read before the write.
func TestCacheFillFencedByWrite(t *testing.T) {
	c := newRecordCache(10, 0)
	k := EncodeKey(1, []byte("n"), []byte("k"))
	_, ok, gen := c.get(k)
	require.False(t, ok)
	c.update(1, []cacheUpdate{{key: k, rec: Record{Seq: 2, Value: []byte("new")}}})
	c.fill(k, Record{Seq: 1, Value: []byte("old")}, gen)
	r, ok := c.peek(k)
	require.True(t, ok)
	require.Equal(t, uint64(2), r.Seq)

	_, _, gen = c.get(EncodeKey(1, []byte("n"), []byte("other")))
	c.invalidate(1)
	c.fill(EncodeKey(1, []byte("n"), []byte("other")), Record{Seq: 1}, gen)
	n, _ := c.len()
	require.Zero(t, n)
}

// TestCacheConcurrentReadersSeeMonotonicSeqs runs readers against one writer:
// a reader must never see a seq older than one it saw before, and the final
// read must be the last write.
func TestCacheConcurrentReadersSeeMonotonicSeqs(t *testing.T) {
	s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: 4})
	const writes = 300
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-done:
					return
				default:
				}
				r, ok, err := s.Get(1, []byte("n"), []byte("k"), 0)
				if err != nil || (ok && r.Seq < last) {
					errs <- fmt.Errorf("seq %d after %d (err %v)", r.Seq, last, err)
					return
				}
				if ok {
					last = r.Seq
				}
			}
		})
	}
	for i := range writes {
		put(t, s, 1, uint64(i+1), "n", "k", fmt.Sprint(i+1), 0)
		if i%50 == 0 {
			s.InvalidateCache(1)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r, ok, err := s.Get(1, []byte("n"), []byte("k"), 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(writes), r.Seq)
}
