package storage

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// recordCache is the LRU of decoded, committed records in front of pebble,
// keyed by encoded key. It holds present records only: a delete removes the
// entry, a miss is not remembered. A nil *recordCache is a disabled cache and
// every method is a no-op.
//
// Stale fills are fenced by a per-partition generation: Get notes the
// generation on a miss, reads pebble, and fills only if no write or
// invalidation of that partition happened in between. Writers bump the
// generation and update entries after their batch commits, so the cache never
// holds a value that did not commit nor one older than pebble's.
type recordCache struct {
	// mu guards every field below except hits and misses. It is a leaf lock:
	// never held while calling pebble or user code.
	mu       sync.Mutex
	lru      *simplelru.LRU[string, Record]
	maxBytes int64          // 0 = entries only
	bytes    int64          // sum of len(key)+len(value) over entries
	perPart  map[int]int    // entries per partition; lets invalidate skip a scan
	gen      map[int]uint64 // bumped by every write/invalidation of a partition

	hits, misses atomic.Uint64
}

// cacheUpdate is one committed write to mirror in the cache.
type cacheUpdate struct {
	key    []byte
	rec    Record
	delete bool
}

// newRecordCache returns nil (disabled) when entries <= 0.
func newRecordCache(entries int, maxBytes int64) *recordCache {
	if entries <= 0 {
		return nil
	}
	c := &recordCache{
		maxBytes: maxBytes,
		perPart:  make(map[int]int),
		gen:      make(map[int]uint64),
	}
	// NewLRU fails only for size <= 0, excluded above.
	c.lru, _ = simplelru.NewLRU(entries, c.onEvictLocked)
	return c
}

// onEvictLocked runs inside lru calls (Remove, RemoveOldest, capacity
// eviction, Purge), all made with mu held.
func (c *recordCache) onEvictLocked(k string, r Record) {
	c.bytes -= entrySize(k, r)
	p := strPartition(k)
	if c.perPart[p]--; c.perPart[p] <= 0 {
		delete(c.perPart, p)
	}
}

// strPartition returns the partition of a cached (data) key.
func strPartition(k string) int { return int(k[0])<<8 | int(k[1]) }

func entrySize(k string, r Record) int64 { return int64(len(k) + len(r.Value)) }

// lookupKey views k as a string without copying. Use it only for map lookups
// that do not retain the key (simplelru Get/Peek/Remove); never as a stored key.
func lookupKey(k []byte) string { return unsafe.String(unsafe.SliceData(k), len(k)) }

// get returns the cached record for k, counting a hit or miss. On a miss it
// returns the partition generation to pass to fill.
func (c *recordCache) get(k []byte) (r Record, ok bool, gen uint64) {
	if c == nil {
		return Record{}, false, 0
	}
	c.mu.Lock()
	r, ok = c.lru.Get(lookupKey(k))
	if !ok {
		gen = c.gen[keyPartition(k)]
	}
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return r, ok, gen
}

// peek returns the cached record for k without touching recency or stats.
func (c *recordCache) peek(k []byte) (Record, bool) {
	if c == nil {
		return Record{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Peek(lookupKey(k))
}

// fill caches r (read from pebble) under k if the partition's generation is
// still gen. r.Value must not be modified afterwards.
func (c *recordCache) fill(k []byte, r Record, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[keyPartition(k)] == gen {
		c.addLocked(string(k), r)
	}
}

// update mirrors the committed writes ups of partition p. Call it after the
// batch commits.
func (c *recordCache) update(p int, ups []cacheUpdate) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[p]++
	for _, u := range ups {
		if u.delete {
			c.lru.Remove(lookupKey(u.key))
			continue
		}
		c.addLocked(string(u.key), u.rec)
	}
}

// addLocked inserts or replaces k, then evicts down to the byte budget. An
// entry larger than the whole budget is not cached (and its old version is
// dropped). Caller holds mu.
func (c *recordCache) addLocked(k string, r Record) {
	c.lru.Remove(k) // keeps byte and per-partition accounting in onEvictLocked
	size := entrySize(k, r)
	if c.maxBytes > 0 && size > c.maxBytes {
		return
	}
	c.lru.Add(k, r) // may evict the oldest entry through onEvictLocked
	c.bytes += size
	c.perPart[strPartition(k)]++
	for c.maxBytes > 0 && c.bytes > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// invalidate drops every entry of partition p and fences in-flight fills.
func (c *recordCache) invalidate(p int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[p]++
	if c.perPart[p] == 0 {
		return
	}
	for _, k := range c.lru.Keys() {
		if strPartition(k) == p {
			c.lru.Remove(k)
		}
	}
}

// stats returns the hit and miss counters.
func (c *recordCache) stats() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

// len returns the number of entries and their byte size.
func (c *recordCache) len() (entries int, size int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
