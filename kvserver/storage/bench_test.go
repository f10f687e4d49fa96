package storage

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/stretchr/testify/require"
)

var keySink []byte

func BenchmarkEncodeKey(b *testing.B) {
	ns, key := []byte("alice"), []byte("user:1234567890")
	b.Run("alloc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			keySink = EncodeKey(513, ns, key)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = AppendKey(buf[:0], 513, ns, key)
		}
	})
}

func BenchmarkApply(b *testing.B) {
	for _, cache := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("cache=%d", cache), func(b *testing.B) {
			s := openTest(b, Options{FS: vfs.NewMem(), Sync: false, CacheEntries: cache})
			val := make([]byte, 100)
			keys := benchKeys(10_000)
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				op := Op{Kind: OpPut, NS: []byte("n"), Key: keys[seq%uint64(len(keys))], Value: val}
				if _, err := s.Apply(1, seq, []Op{op}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyEntry is BenchmarkApply's workload through ApplyEntry at the
// head: the same put plus the log and dedup records in the batch.
func BenchmarkApplyEntry(b *testing.B) {
	for _, cache := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("cache=%d", cache), func(b *testing.B) {
			s := openTest(b, Options{FS: vfs.NewMem(), Sync: false, CacheEntries: cache})
			val := make([]byte, 100)
			keys := benchKeys(10_000)
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				op := Op{Kind: OpPut, NS: []byte("n"), Key: keys[seq%uint64(len(keys))], Value: val}
				e := LogEntry{Seq: seq, Ops: []Op{op}, Client: 1 + seq%64, ClientSeq: seq, WallMs: int64(seq)}
				if _, err := s.ApplyEntry(1, e, true, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyEntryTruncate is the tail's steady state: every entry is
// applied and the log truncated a few entries behind it, with a read of
// another key in between (reads in the memtable pay for range deletions).
func BenchmarkApplyEntryTruncate(b *testing.B) {
	s := openTest(b, Options{FS: vfs.NewMem(), Sync: false})
	val := make([]byte, 100)
	keys := benchKeys(10_000)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		op := Op{Kind: OpPut, NS: []byte("n"), Key: keys[seq%uint64(len(keys))], Value: val}
		if _, err := s.ApplyEntry(1, LogEntry{Seq: seq, Ops: []Op{op}}, true, 0); err != nil {
			b.Fatal(err)
		}
		if seq > 4 {
			if err := s.TruncateLog(1, seq-4); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := s.Get(1, []byte("n"), keys[(seq*7)%uint64(len(keys))], 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetCached(b *testing.B) {
	s := openTest(b, Options{FS: vfs.NewMem(), CacheEntries: 100_000})
	keys := loadBench(b, s, 10_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, ok, err := s.Get(1, []byte("n"), keys[i%len(keys)], 0); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	h, m := s.CacheStats()
	b.ReportMetric(float64(h)/float64(h+m), "hit-ratio")
}

func BenchmarkGetUncached(b *testing.B) {
	s := openTest(b, Options{FS: vfs.NewMem()})
	keys := loadBench(b, s, 10_000)
	require.NoError(b, s.db.Flush()) // read from sstables, not only the memtable
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, ok, err := s.Get(1, []byte("n"), keys[i%len(keys)], 0); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%08d", i)
	}
	return keys
}

// loadBench writes n 100-byte values to partition 1 in batches and warms the cache.
func loadBench(b *testing.B, s *Store, n int) [][]byte {
	b.Helper()
	keys := benchKeys(n)
	val := make([]byte, 100)
	var ops []Op
	for i, k := range keys {
		ops = append(ops, Op{Kind: OpPut, NS: []byte("n"), Key: k, Value: val})
		if len(ops) == 1000 || i == len(keys)-1 {
			_, err := s.Apply(1, uint64(i+1), ops, 0)
			require.NoError(b, err)
			ops = ops[:0]
		}
	}
	return keys
}

// BenchmarkWriterSteady is a member's steady state under writes: groups of
// 8 entries of 1 KiB values over 64 partitions committed as one batch, the
// log truncated and the dedup records forgotten a few groups behind, on a
// real filesystem so flushes and compactions cost what they cost. cpu-ns/op
// counts every goroutine's CPU (flushes, compactions), not only the loop's.
func BenchmarkWriterSteady(b *testing.B) {
	for _, mt := range []int{4 << 20, 16 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("memtable=%dMiB", mt>>20), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{CacheEntries: 100_000, Tune: func(o *pebble.Options) { o.MemTableSize = uint64(mt) }})
			require.NoError(b, err)
			defer s.Close()
			val := make([]byte, 1024)
			keys := benchKeys(10_000)
			const parts, group, behind = 64, 8, 32
			applied := make([]uint64, parts)
			var ids [][]DedupID
			cpu0 := cpuNs()
			n := 0
			for b.Loop() {
				w := s.NewWriter()
				var gids []DedupID
				for i := range group {
					p := (n*group + i) % parts
					applied[p]++
					seq := applied[p]
					id := DedupID{Client: uint64(1 + n%64), Seq: uint64(n*group + i)}
					op := Op{Kind: OpPut, NS: []byte("n"), Key: keys[(n*group+i)*7919%len(keys)], Value: val}
					if _, err := w.ApplyEntry(p, LogEntry{Seq: seq, Ops: []Op{op}, Client: id.Client, ClientSeq: id.Seq}, true, 0); err != nil {
						b.Fatal(err)
					}
					gids = append(gids, id)
					if seq > behind {
						if err := w.TruncateLog(p, seq-behind); err != nil {
							b.Fatal(err)
						}
					}
				}
				ids = append(ids, gids)
				if len(ids) > behind {
					if err := w.ForgetDedup(0, ids[0]); err != nil {
						b.Fatal(err)
					}
					ids = ids[1:]
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				w.Close()
				n++
			}
			b.ReportMetric(float64(cpuNs()-cpu0)/float64(n*group), "cpu-ns/entry")
		})
	}
}

// cpuNs is the process's CPU time so far.
func cpuNs() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkWriterStep is a loaded chain member's step: a few client writes of
// partitions spread over 1024, each with its log and dedup record, the
// truncation of each partition's entry before it and the expiry of an old
// dedup record, all in one Writer, into a memtable already holding many
// steps. ns/op is per entry.
func BenchmarkWriterStep(b *testing.B) {
	s := openTest(b, Options{FS: vfs.NewMem(), Sync: false})
	val := make([]byte, 1024)
	keys := benchKeys(10_000)
	const parts, perStep = 1024, 4
	seqs := make([]uint64, parts)
	rng := rand.New(rand.NewPCG(1, 2))
	cseq := uint64(0)
	step := func() {
		w := s.NewWriter()
		defer w.Close()
		for range perStep {
			p := rng.IntN(parts)
			seqs[p]++
			cseq++
			op := Op{Kind: OpPut, NS: []byte("n"), Key: keys[rng.IntN(len(keys))], Value: val}
			e := LogEntry{Seq: seqs[p], Ops: []Op{op}, Client: 1 + cseq%64, ClientSeq: cseq, WallMs: int64(cseq), Status: kvpb.Status_SUCCESS}
			if _, err := w.ApplyEntry(p, e, false, 0); err != nil {
				b.Fatal(err)
			}
			if seqs[p] > 1 {
				if err := w.TruncateLog(p, seqs[p]-1); err != nil {
					b.Fatal(err)
				}
			}
			if cseq > 2000 {
				old := cseq - 2000
				if err := w.ForgetDedup(p, []DedupID{{1 + old%64, old}}); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	for range 2000 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perStep), "ns/entry")
}
