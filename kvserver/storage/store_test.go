package storage

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

func TestApplyExisted(t *testing.T) {
	const now = 1000
	putOp := func(key string, expiry int64) Op {
		return Op{Kind: OpPut, NS: []byte("n"), Key: []byte(key), Value: []byte("v"), ExpiryMs: expiry}
	}
	delOp := func(key string) Op { return Op{Kind: OpDelete, NS: []byte("n"), Key: []byte(key)} }
	steps := []struct {
		name string
		ops  []Op
		want []bool
	}{
		{"put new", []Op{putOp("a", 0)}, []bool{false}},
		{"put again", []Op{putOp("a", 0)}, []bool{true}},
		{"delete", []Op{delOp("a")}, []bool{true}},
		{"delete missing", []Op{delOp("a")}, []bool{false}},
		{"put already expired", []Op{putOp("b", now-1)}, []bool{false}},
		{"put over expired", []Op{putOp("b", 0)}, []bool{false}},
		{"put with future ttl", []Op{putOp("c", now+1)}, []bool{false}},
		{"put over live ttl", []Op{putOp("c", 0)}, []bool{true}},
		{"same key twice in batch", []Op{putOp("d", 0), putOp("d", 0), delOp("d"), delOp("d")}, []bool{false, true, true, false}},
		{"other namespace is separate", []Op{{Kind: OpPut, NS: []byte("m"), Key: []byte("c")}}, []bool{false}},
		{"empty batch", nil, []bool{}},
	}
	for _, cache := range []int{0, 100} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			s := openTest(t, Options{FS: vfs.NewMem(), CacheEntries: cache})
			for i, st := range steps {
				got, err := s.Apply(1, uint64(i+1), st.ops, now)
				require.NoError(t, err, st.name)
				require.Equal(t, st.want, got, st.name)
				seq, err := s.AppliedSeq(1)
				require.NoError(t, err)
				require.Equal(t, uint64(i+1), seq, st.name)
			}
		})
	}
}

func TestApplyRejects(t *testing.T) {
	s := openTest(t, testOptions())
	put(t, s, 1, 5, "n", "k", "v", 0)
	tests := []struct {
		name    string
		p       int
		seq     uint64
		ops     []Op
		wantErr error
	}{
		{"replayed seq", 1, 5, nil, ErrStaleSeq},
		{"older seq", 1, 4, nil, ErrStaleSeq},
		{"bad kind", 1, 6, []Op{{Kind: 9}}, ErrBadOp},
		{"nul namespace", 1, 6, []Op{{Kind: OpPut, NS: []byte("a\x00")}}, ErrBadNamespace},
		{"bad partition", MaxPartitions, 1, nil, ErrBadPartition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Apply(tt.p, tt.seq, tt.ops, 0)
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
	seq, err := s.AppliedSeq(1)
	require.NoError(t, err)
	require.Equal(t, uint64(5), seq)
}

func TestTTLReadsAsMissing(t *testing.T) {
	s := openTest(t, testOptions())
	put(t, s, 2, 1, "", "k", "v", 1000)
	tests := []struct {
		now  int64
		want bool
	}{{999, true}, {1000, false}, {5000, false}, {0, true}}
	for _, tt := range tests {
		t.Run(fmt.Sprint("now=", tt.now), func(t *testing.T) {
			_, ok := get(t, s, 2, "", "k", tt.now)
			require.Equal(t, tt.want, ok)
		})
	}
}

func TestAppliedSeqSurvivesReopen(t *testing.T) {
	tests := []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
	}{
		{"mem", func(*testing.T) (vfs.FS, string) { return vfs.NewMem(), "db" }},
		{"disk", func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
		{"disk with raw WAL syncs", func(t *testing.T) (vfs.FS, string) { return nil, t.TempDir() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, dir := tt.fs(t)
			opts := Options{FS: fs, Sync: true, CacheEntries: 10, RawWALSync: fs == nil}
			s, err := Open(dir, opts)
			require.NoError(t, err)
			put(t, s, 9, 41, "n", "k", "v41", 0)
			put(t, s, 9, 42, "n", "k", "v42", 0)
			require.NoError(t, s.SetPartitionMeta(9, 7))
			require.NoError(t, s.Close())
			require.NoError(t, s.Close(), "second Close is a no-op")

			s, err = Open(dir, opts)
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Close()) }()
			seq, err := s.AppliedSeq(9)
			require.NoError(t, err)
			require.Equal(t, uint64(42), seq)
			cv, err := s.PartitionMeta(9)
			require.NoError(t, err)
			require.Equal(t, uint64(7), cv)
			r, ok, err := s.Get(9, []byte("n"), []byte("k"), 0)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, Record{Seq: 42, Value: []byte("v42")}, r)
		})
	}
}

func TestDropPartition(t *testing.T) {
	s := openTest(t, testOptions())
	for _, p := range []int{1, 2, 3} {
		put(t, s, p, 1, "n", "k", fmt.Sprint("v", p), 0)
		put(t, s, p, 2, "m", "k2", "x", 0)
		require.NoError(t, s.SetPartitionMeta(p, 3))
	}
	require.NoError(t, s.SetPartitionMeta(4, 1)) // state only
	ps, err := s.Partitions()
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4}, ps)

	require.NoError(t, s.DropPartition(2))
	require.NoError(t, s.DropPartition(4))
	ps, err = s.Partitions()
	require.NoError(t, err)
	require.Equal(t, []int{1, 3}, ps)

	_, ok := get(t, s, 2, "n", "k", 0)
	require.False(t, ok, "dropped key served (from cache?)")
	st, err := s.Stats(2)
	require.NoError(t, err)
	require.Zero(t, st.Keys)
	seq, err := s.AppliedSeq(2)
	require.NoError(t, err)
	require.Zero(t, seq)
	cv, err := s.PartitionMeta(2)
	require.NoError(t, err)
	require.Zero(t, cv)
	for _, p := range []int{1, 3} {
		v, ok := get(t, s, p, "n", "k", 0)
		require.True(t, ok)
		require.Equal(t, fmt.Sprint("v", p), v)
		st, err := s.Stats(p)
		require.NoError(t, err)
		require.Equal(t, 2, st.Keys)
		seq, err := s.AppliedSeq(p)
		require.NoError(t, err)
		require.Equal(t, uint64(2), seq)
	}
	// The partition can be refilled from seq 1 after a drop.
	require.False(t, put(t, s, 2, 1, "n", "k", "again", 0))
}

func TestScanOrder(t *testing.T) {
	s := openTest(t, testOptions())
	var want []string
	for _, ns := range []string{"", "a", "b"} {
		for i := range 20 {
			want = append(want, fmt.Sprintf("%s/k%02d", ns, i))
		}
	}
	shuffled := append([]string(nil), want...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i, nk := range shuffled {
		ns, key := splitNK(nk)
		put(t, s, 5, uint64(i+1), ns, key, nk, 0)
	}
	put(t, s, 6, 1, "", "other", "x", 0) // a neighbour partition must not show up
	var got []string
	require.NoError(t, s.Scan(5, func(ns, key []byte, r Record) error {
		require.Equal(t, string(ns)+"/"+string(key), string(r.Value))
		got = append(got, string(ns)+"/"+string(key))
		return nil
	}))
	require.Equal(t, want, got)

	stop := fmt.Errorf("stop")
	n := 0
	err := s.Scan(5, func([]byte, []byte, Record) error { n++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
}

// splitNK splits "ns/key".
func splitNK(s string) (ns, key string) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

func TestScanLiveAndExpiredKeys(t *testing.T) {
	s := openTest(t, testOptions())
	expiries := map[string]int64{"a": 0, "b": 100, "c": 200, "d": 300, "e": 0}
	seq := uint64(0)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		seq++
		put(t, s, 1, seq, "n", k, "v", expiries[k])
	}
	keysOf := func(ops []Op) []string {
		var ks []string
		for _, op := range ops {
			require.Equal(t, OpDelete, op.Kind)
			require.Equal(t, "n", string(op.NS))
			ks = append(ks, string(op.Key))
		}
		return ks
	}
	tests := []struct {
		now   int64
		limit int
		want  []string
	}{
		{99, 0, nil},
		{100, 0, []string{"b"}},
		{250, 0, []string{"b", "c"}},
		{1000, 0, []string{"b", "c", "d"}},
		{1000, 2, []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("now=%d,limit=%d", tt.now, tt.limit), func(t *testing.T) {
			ops, err := s.ExpiredKeys(1, tt.now, tt.limit)
			require.NoError(t, err)
			require.Equal(t, tt.want, keysOf(ops))
		})
	}
	var live []string
	require.NoError(t, s.ScanLive(1, 250, func(_, key []byte, _ Record) error {
		live = append(live, string(key))
		return nil
	}))
	require.Equal(t, []string{"a", "d", "e"}, live)
}

func TestNamespaceKeys(t *testing.T) {
	s := openTest(t, testOptions())
	seq := uint64(0)
	for _, nk := range []string{"ab/1", "a/1", "a/2", "a/3", "b/1", "/1", "a\x01/1"} {
		seq++
		ns, key := splitNK(nk)
		put(t, s, 1, seq, ns, key, "v", 0)
	}
	seq++
	put(t, s, 1, seq, "a", "4", "v", 100) // expired at any later time: swept too
	put(t, s, 2, 1, "a", "other-partition", "v", 0)
	keys := func(ns string, limit int) []string {
		ops, err := s.NamespaceKeys(1, []byte(ns), limit)
		require.NoError(t, err)
		var ks []string
		for _, op := range ops {
			require.Equal(t, OpDelete, op.Kind)
			require.Equal(t, ns, string(op.NS))
			ks = append(ks, string(op.Key))
		}
		return ks
	}
	require.Equal(t, []string{"1", "2", "3", "4"}, keys("a", 0), "only namespace a, not ab or a\\x01, not partition 2")
	require.Equal(t, []string{"1", "2"}, keys("a", 2))
	require.Equal(t, []string{"1"}, keys("ab", 0))
	require.Nil(t, keys("c", 0))
	_, err := s.NamespaceKeys(1, []byte("a\x00"), 0)
	require.ErrorIs(t, err, ErrBadNamespace)
}

func TestChecksum(t *testing.T) {
	base := func(t *testing.T) *Store {
		s := openTest(t, testOptions())
		put(t, s, 1, 1, "n", "a", "1", 0)
		put(t, s, 1, 2, "n", "b", "2", 500)
		return s
	}
	ref := base(t)
	want, err := ref.Checksum(1)
	require.NoError(t, err)
	tests := []struct {
		name   string
		mutate func(t *testing.T, s *Store)
		equal  bool
	}{
		{"same contents", func(*testing.T, *Store) {}, true},
		{"other partition written", func(t *testing.T, s *Store) { put(t, s, 2, 1, "n", "z", "z", 0) }, true},
		{"chain version ignored", func(t *testing.T, s *Store) { require.NoError(t, s.SetPartitionMeta(1, 9)) }, true},
		{"different value", func(t *testing.T, s *Store) { put(t, s, 1, 3, "n", "a", "x", 0) }, false},
		{"extra key", func(t *testing.T, s *Store) { put(t, s, 1, 3, "n", "c", "3", 0) }, false},
		{"applied seq only", func(t *testing.T, s *Store) { _, err := s.Apply(1, 3, nil, 0); require.NoError(t, err) }, false},
		{"deleted key", func(t *testing.T, s *Store) {
			_, err := s.Apply(1, 3, []Op{{Kind: OpDelete, NS: []byte("n"), Key: []byte("a")}}, 0)
			require.NoError(t, err)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base(t)
			tt.mutate(t, s)
			got, err := s.Checksum(1)
			require.NoError(t, err)
			require.Equal(t, tt.equal, got == want)
		})
	}
	empty := openTest(t, testOptions())
	a, err := empty.Checksum(3)
	require.NoError(t, err)
	b, err := ref.Checksum(3)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func TestScanSnapshotIngest(t *testing.T) {
	src := openTest(t, testOptions())
	for i := range 50 {
		put(t, src, 4, uint64(i+1), "n", fmt.Sprint("k", i), fmt.Sprint("v", i), int64(i%3)*1000)
	}
	var entries []Entry
	seq, err := src.ScanSnapshot(4, func(ns, key []byte, r Record) error {
		r.Value = append([]byte(nil), r.Value...)
		entries = append(entries, Entry{NS: append([]byte(nil), ns...), Key: append([]byte(nil), key...), Record: r})
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, uint64(50), seq)

	dst := openTest(t, testOptions())
	put(t, dst, 4, 1, "n", "k0", "stale", 0) // cached before the ingest
	require.NoError(t, dst.Ingest(4, entries, seq))
	v, ok := get(t, dst, 4, "n", "k0", 0)
	require.True(t, ok)
	require.Equal(t, "v0", v)
	a, err := src.Checksum(4)
	require.NoError(t, err)
	b, err := dst.Checksum(4)
	require.NoError(t, err)
	require.Equal(t, a, b)
	_, err = dst.Apply(4, 50, nil, 0)
	require.ErrorIs(t, err, ErrStaleSeq)
}

func TestBadArgumentsAndClosed(t *testing.T) {
	s, err := Open("db", testOptions())
	require.NoError(t, err)
	_, _, err = s.Get(-1, nil, []byte("k"), 0)
	require.ErrorIs(t, err, ErrBadPartition)
	_, _, err = s.Get(0, []byte("a\x00"), []byte("k"), 0)
	require.ErrorIs(t, err, ErrBadNamespace)
	_, err = s.Checksum(MaxPartitions)
	require.ErrorIs(t, err, ErrBadPartition)
	require.NoError(t, s.Close())

	_, _, err = s.Get(0, nil, []byte("k"), 0)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Apply(0, 1, nil, 0)
	require.ErrorIs(t, err, ErrClosed)
	_, err = s.Partitions()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.DropPartition(0), ErrClosed)
	require.Nil(t, s.Metrics())
}

func TestStatsAndMetrics(t *testing.T) {
	s := openTest(t, testOptions())
	put(t, s, 1, 1, "n", "k", "value", 0)
	st, err := s.Stats(1)
	require.NoError(t, err)
	require.Equal(t, PartitionStats{Keys: 1, Bytes: uint64(len("\x00\x01n\x00k") + recordHeaderLen + len("value"))}, st)
	_, err = s.DiskUsage(1)
	require.NoError(t, err)
	require.NotNil(t, s.Metrics())
}

func TestConcurrentPartitions(t *testing.T) {
	s := openTest(t, Options{FS: vfs.NewMem(), Sync: true, CacheEntries: 64})
	const parts, writes = 4, 100
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { // one writer per partition, as Apply requires
			for i := range writes {
				k := []byte(fmt.Sprint("k", i%10))
				if _, err := s.Apply(p, uint64(i+1), []Op{{Kind: OpPut, Key: k, Value: k}}, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() { // a concurrent reader
			for i := range writes {
				if _, _, err := s.Get(p, nil, []byte(fmt.Sprint("k", i%10)), 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for p := range parts {
		seq, err := s.AppliedSeq(p)
		require.NoError(t, err)
		require.Equal(t, uint64(writes), seq)
		st, err := s.Stats(p)
		require.NoError(t, err)
		require.Equal(t, 10, st.Keys)
	}
	ps, err := s.Partitions()
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 3}, ps)
}
