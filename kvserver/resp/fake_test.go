package resp

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memCluster is a Cluster in memory: one keyspace per user ("" without a
// login), passwords in a map, auth on when it has any user.
type memCluster struct {
	mu        sync.Mutex
	spaces    map[string]*memBackend
	passwords map[string]string
	logins    int
	released  int
	maxArg    int
}

func newMemCluster() *memCluster {
	return &memCluster{spaces: map[string]*memBackend{}, passwords: map[string]string{}}
}

func (c *memCluster) space(user string) *memBackend {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.spaces[user]
	if b == nil {
		b = &memBackend{vals: map[string]memValue{}}
		c.spaces[user] = b
	}
	return b
}

func (c *memCluster) Anonymous() Backend { return c.space("") }

func (c *memCluster) AuthRequired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.passwords) > 0
}

func (c *memCluster) MaxArgBytes() int { return c.maxArg }

func (c *memCluster) Login(_ context.Context, user, password, _ string) (Backend, func(), error) {
	c.mu.Lock()
	pw, ok := c.passwords[user]
	auth := len(c.passwords) > 0
	c.mu.Unlock()
	switch {
	case !auth:
		return nil, nil, ErrAuthDisabled
	case !ok || pw != password:
		return nil, nil, ErrBadCredentials
	}
	c.mu.Lock()
	c.logins++
	c.mu.Unlock()
	return c.space(user), func() { c.mu.Lock(); c.released++; c.mu.Unlock() }, nil
}

type memValue struct {
	v   []byte
	exp time.Time // zero: none
	ver uint64
}

// memBackend is a Backend in a map; gate, when set, holds every call
// until it is closed.
type memBackend struct {
	mu   sync.Mutex
	vals map[string]memValue
	seq  uint64 // the latest version written
	gate chan struct{}
	// beforeSet, when set, runs before a Set takes the lock (a write
	// racing with the command).
	beforeSet func()
}

func (b *memBackend) wait(ctx context.Context) error {
	if b.gate == nil {
		return nil
	}
	select {
	case <-b.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// liveLocked returns key's value if it exists and has not expired.
func (b *memBackend) liveLocked(key string) (memValue, bool) {
	v, ok := b.vals[key]
	if ok && !v.exp.IsZero() && !time.Now().Before(v.exp) {
		delete(b.vals, key)
		return memValue{}, false
	}
	return v, ok
}

func (b *memBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.liveLocked(key)
	if !ok {
		return nil, ErrNotFound
	}
	return v.v, nil
}

func (b *memBackend) GetEntry(ctx context.Context, key string) (Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.liveLocked(key)
	if !ok {
		return Entry{}, ErrNotFound
	}
	e := Entry{Value: v.v, Version: v.ver}
	if !v.exp.IsZero() {
		e.TTL = time.Until(v.exp)
	}
	return e, nil
}

// writeLocked stores v under key with the next version.
func (b *memBackend) writeLocked(key string, v memValue) {
	b.seq++
	v.ver = b.seq
	b.vals[key] = v
}

func (b *memBackend) MGet(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := b.Get(ctx, k)
		if err == nil {
			out[i] = v
		}
	}
	return out, nil
}

func (b *memBackend) Set(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	if err := b.wait(ctx); err != nil {
		return SetResult{}, err
	}
	if b.beforeSet != nil {
		b.beforeSet()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.liveLocked(key)
	res := SetResult{Existed: ok, Previous: old.v}
	if (o.IfAbsent && ok) || (o.IfExists && !ok) || (o.CheckVersion && o.IfVersion != old.ver) {
		return res, ErrConditionFailed
	}
	v := memValue{v: bytes.Clone(value)}
	if o.TTL > 0 {
		v.exp = time.Now().Add(o.TTL)
	}
	b.writeLocked(key, v)
	return res, nil
}

func (b *memBackend) MSet(ctx context.Context, kvs []KV) error {
	for _, kv := range kvs {
		if _, err := b.Set(ctx, kv.Key, kv.Value, SetOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBackend) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.liveLocked(key); !ok {
		return ErrNotFound
	}
	delete(b.vals, key)
	return nil
}

func (b *memBackend) Incr(ctx context.Context, key string, delta int64) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, _ := b.liveLocked(key)
	n := int64(0)
	if v.v != nil {
		var err error
		if n, err = strconv.ParseInt(string(v.v), 10, 64); err != nil {
			return 0, ErrNotInteger
		}
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, ErrOverflow
	}
	n += delta
	v.v = []byte(strconv.FormatInt(n, 10))
	b.writeLocked(key, v)
	return n, nil
}

func (b *memBackend) Expire(ctx context.Context, key string, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.liveLocked(key)
	if !ok {
		return ErrNotFound
	}
	v.exp = time.Now().Add(ttl)
	b.writeLocked(key, v)
	return nil
}

func (b *memBackend) Persist(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.liveLocked(key)
	if !ok {
		return ErrNotFound
	}
	v.exp = time.Time{}
	b.writeLocked(key, v)
	return nil
}

// Scan walks the keys in order; the cursor is the last key returned.
func (b *memBackend) Scan(ctx context.Context, prefix, cursor string, count int) ([]string, string, error) {
	if cursor == "bad" {
		return nil, "", errors.New("bad cursor")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []string
	for k := range b.vals {
		if _, ok := b.liveLocked(k); ok && strings.HasPrefix(k, prefix) && k > cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) <= count {
		return keys, "", nil
	}
	return keys[:count], keys[count-1], nil
}
