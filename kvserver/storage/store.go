package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// Options configures Open. Start from DefaultOptions: the zero value does not
// fsync and has no cache.
type Options struct {
	// FS is the filesystem pebble uses; nil means vfs.Default. Tests use vfs.NewMem().
	FS vfs.FS
	// Sync fsyncs every applied batch (pebble.Sync) when true; concurrent syncs
	// share one fsync through pebble's group commit. false uses pebble.NoSync.
	// DefaultOptions sets true (DESIGN.md §4: acknowledged writes are durable).
	Sync bool
	// CacheEntries is the LRU capacity in entries; 0 disables the cache.
	CacheEntries int
	// CacheBytes is the LRU budget in bytes over len(key)+len(value) per entry;
	// 0 bounds the cache by CacheEntries only.
	CacheBytes int64
	// Logger receives store and pebble logs; nil means zap.NewNop().
	Logger *zap.Logger
	// OnSync, when set, is told how long each synced commit or WAL sync took
	// (the fsync latency every acknowledged write waits for).
	OnSync func(time.Duration)
	// WholeLog writes every log record whole, none lean (lean.go), so a
	// version from before lean records can open the data directory.
	WholeLog bool
	// RawWALSync syncs and writes the WAL with raw system calls that keep
	// their Go processor (rawsync_linux.go): fewer context switches and
	// less CPU per write. Only on the OS's filesystem (FS nil) and on Linux.
	RawWALSync bool
	// Tune, when set, adjusts pebble's options before Open (the simulator
	// turns off background compactions and watches WAL rotations).
	Tune func(*pebble.Options)
}

// DefaultOptions returns synced writes and a 100k-entry, 64 MiB cache.
func DefaultOptions() Options {
	return Options{Sync: true, CacheEntries: 100_000, CacheBytes: 64 << 20}
}

// Store is one server's pebble DB plus its record cache. See the package doc
// for the concurrency contract.
type Store struct {
	db     *pebble.DB
	lg     *zap.Logger
	wo     *pebble.WriteOptions
	cache  *recordCache // nil when disabled; goroutine-safe
	closed atomic.Bool
	onSync func(time.Duration)

	// applied mirrors each partition's committed applied_seq as seq+1; 0 means
	// unknown (read pebble). Only the partition's writer (Apply, Ingest,
	// DropPartition, serialised by the caller) stores into it, after its batch
	// commits, so a reader can never install a stale value.
	applied []atomic.Uint64
	// truncated mirrors each partition's log truncation point the same way
	// (TruncateLog runs after nearly every commit; reading it from pebble
	// each time cost a tenth of a server's CPU under writes).
	truncated []atomic.Uint64
	// lean holds, by partition, the entries of lean log records (lean.go);
	// like applied, only the partition's writer touches it.
	lean     []leanMap
	wholeLog bool // Options.WholeLog
}

// keyBufPool recycles key-encoding buffers for Get so a cache hit allocates nothing.
var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

// Open opens (creating if needed) the pebble DB in dir.
func Open(dir string, opts Options) (*Store, error) {
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	po := &pebble.Options{
		FS:     opts.FS,
		Logger: lg.Named("pebble").Sugar(),
		// Every write also writes a log record that a commit soon deletes:
		// a memtable larger than pebble's 4 MiB lets more of that churn
		// die before a flush. Not much larger: each insert walks the
		// skiplist through cache misses, and at 64 MiB the inserts were a
		// sixth of a server's CPU under writes; 16 MiB wrote 15-25% faster
		// than 64 (and than 4 or 8) in make bench-peers' W.
		MemTableSize: 16 << 20,
	}
	if opts.RawWALSync && opts.FS == nil {
		po.FS = withRawWALSync(nil)
	}
	if opts.Tune != nil {
		opts.Tune(po)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("storage: open %q: %w", dir, err)
	}
	s := &Store{
		db:     db,
		lg:     lg,
		wo:     pebble.NoSync,
		cache:  newRecordCache(opts.CacheEntries, opts.CacheBytes),
		onSync: opts.OnSync,

		applied:   make([]atomic.Uint64, MaxPartitions),
		truncated: make([]atomic.Uint64, MaxPartitions),
		lean:      make([]leanMap, MaxPartitions),
		wholeLog:  opts.WholeLog,
	}
	if err := s.primeLean(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("storage: open %q: %w", dir, err)
	}
	if opts.Sync {
		s.wo = pebble.Sync
	}
	lg.Info("storage opened", zap.String("dir", dir), zap.Bool("sync", opts.Sync),
		zap.Int("cache-entries", opts.CacheEntries), zap.Int64("cache-bytes", opts.CacheBytes))
	return s, nil
}

// Close closes the DB. It must not race with other calls; a second Close returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	s.lg.Info("storage closed")
	return nil
}

// check validates the common arguments of a call on partition p.
func (s *Store) check(p int) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ValidatePartition(p)
}

// Get reads a key. A record that expired at nowMs reads as missing (nowMs = 0
// disables the expiry check, e.g. for a sweeper re-checking a key). Served from
// the cache when present. r.Value must not be modified.
func (s *Store) Get(partition int, ns, key []byte, nowMs int64) (Record, bool, error) {
	if err := s.check(partition); err != nil {
		return Record{}, false, err
	}
	if err := ValidateNamespace(ns); err != nil {
		return Record{}, false, err
	}
	bp := keyBufPool.Get().(*[]byte)
	k := appendKeyUnchecked((*bp)[:0], partition, ns, key)
	r, ok, err := s.getEncoded(k)
	*bp = k
	keyBufPool.Put(bp)
	if err != nil || !ok || r.Expired(nowMs) {
		return Record{}, false, err
	}
	return r, true, nil
}

// getEncoded looks k up in the cache, then in pebble, filling the cache. k is
// not retained.
func (s *Store) getEncoded(k []byte) (Record, bool, error) {
	r, ok, gen := s.cache.get(k)
	if ok {
		return r, true, nil
	}
	r, ok, err := s.readRecord(k, true)
	if err != nil || !ok {
		return Record{}, false, err
	}
	s.cache.fill(k, r, gen)
	return r, true, nil
}

// readRecord reads and decodes k from pebble. The value is copied when
// copyValue, otherwise dropped (only the header is returned).
func (s *Store) readRecord(k []byte, copyValue bool) (Record, bool, error) {
	return readRecordFrom(s.db, k, copyValue)
}

// readRecordFrom reads k's record from rd; the value is a copy, or nil
// without copyValue.
func readRecordFrom(rd pebble.Reader, k []byte, copyValue bool) (Record, bool, error) {
	v, closer, err := rd.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("storage: get: %w", err)
	}
	defer closer.Close()
	r, err := DecodeRecord(v)
	if err != nil {
		return Record{}, false, fmt.Errorf("storage: key %x: %w", k, err)
	}
	if copyValue {
		r.Value = bytes.Clone(r.Value)
	} else {
		r.Value = nil
	}
	return r, true, nil
}

// readState reads a uint64 state value from r; a missing key reads as 0.
func readState(r pebble.Reader, p int, kind byte) (uint64, error) {
	v, closer, err := r.Get(stateKey(p, kind))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: read state %d/%d: %w", p, kind, err)
	}
	defer closer.Close()
	n, err := decodeUint64(v)
	if err != nil {
		return 0, fmt.Errorf("storage: state %d/%d: %w", p, kind, err)
	}
	return n, nil
}

// AppliedSeq returns the seq of the last batch applied to partition (0 if none).
func (s *Store) AppliedSeq(partition int) (uint64, error) {
	if err := s.check(partition); err != nil {
		return 0, err
	}
	if v := s.applied[partition].Load(); v != 0 {
		return v - 1, nil
	}
	return readApplied(s.db, partition)
}

// readApplied reads partition p's applied seq from r: the highest of the
// applied_seq record, the truncation point and the last log record. A
// chain entry's batch writes no applied_seq record (one pebble key fewer
// per entry and partition): its log record says as much, and truncation
// deletes log records only up to a point it records. Writes without a log
// record (Apply, ingests, snapshots) still write applied_seq.
func readApplied(r pebble.Reader, p int) (uint64, error) {
	applied, err := readState(r, p, stateApplied)
	if err != nil {
		return 0, err
	}
	trunc, err := readState(r, p, stateTruncate)
	if err != nil {
		return 0, err
	}
	last, err := lastLogSeq(r, p)
	if err != nil {
		return 0, err
	}
	return max(applied, trunc, last), nil
}

// lastLogSeq is the seq of partition p's last log record in r (0: none).
func lastLogSeq(r pebble.Reader, p int) (uint64, error) {
	lo, hi := kindBounds(p, stateLog)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, fmt.Errorf("storage: iter partition %d: %w", p, err)
	}
	var seq uint64
	if it.Last() {
		k := it.Key()
		if len(k) != stateKeyLen+8 {
			_ = it.Close()
			return 0, fmt.Errorf("storage: partition %d: log key %x: %w", p, k, ErrCorruptRecord)
		}
		seq = binary.BigEndian.Uint64(k[stateKeyLen:])
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("storage: iter partition %d: %w", p, err)
	}
	return seq, nil
}

// truncatedSeq returns partition p's log truncation point (0 if none).
func (s *Store) truncatedSeq(p int) (uint64, error) {
	if v := s.truncated[p].Load(); v != 0 {
		return v - 1, nil
	}
	return readState(s.db, p, stateTruncate)
}

// SetPartitionMeta stores the partition's chain version under the reserved prefix.
func (s *Store) SetPartitionMeta(partition int, chainVersion uint64) error {
	if err := s.check(partition); err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(nil, chainVersion)
	if err := s.db.Set(stateKey(partition, stateMeta), v, s.wo); err != nil {
		return fmt.Errorf("storage: set meta of partition %d: %w", partition, err)
	}
	return nil
}

// PartitionMeta returns the chain version stored by SetPartitionMeta or
// SetVersion (0 if none).
func (s *Store) PartitionMeta(partition int) (chainVersion uint64, err error) {
	if err := s.check(partition); err != nil {
		return 0, err
	}
	v, err := readVersion(s.db, partition)
	return v.ver, err
}

// InvalidateCache drops a partition's cache entries (called when the server's
// role in that partition changes).
func (s *Store) InvalidateCache(partition int) {
	if ValidatePartition(partition) == nil {
		s.cache.invalidate(partition)
	}
}

// CacheStats returns the cache's hit and miss counts since Open.
func (s *Store) CacheStats() (hits, misses uint64) { return s.cache.stats() }

// Metrics returns pebble's metrics (LSM shape, compactions, block cache), or
// nil after Close.
func (s *Store) Metrics() *pebble.Metrics {
	if s.closed.Load() {
		return nil
	}
	return s.db.Metrics()
}
