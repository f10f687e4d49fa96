package dht

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a Store in memory. jitter delays each call by up to that
// much, so requests in flight finish out of order; gate, when set, holds
// every call until it is closed.
type memStore struct {
	jitter time.Duration
	limit  int
	gate   chan struct{}

	mu   sync.Mutex
	vals map[Key][]byte
	ttls map[Key]time.Duration

	active, peak atomic.Int32
}

func newMemStore() *memStore {
	return &memStore{limit: MaxValueSize, vals: map[Key][]byte{}, ttls: map[Key]time.Duration{}}
}

func (s *memStore) wait(ctx context.Context) error {
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	if s.jitter > 0 {
		time.Sleep(rand.N(s.jitter))
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *memStore) Put(ctx context.Context, key Key, value []byte, ttl time.Duration) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key], s.ttls[key] = bytes.Clone(value), ttl
	return nil
}

func (s *memStore) Get(ctx context.Context, key Key) ([]byte, bool, error) {
	if err := s.wait(ctx); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[key]
	return v, ok, nil
}

func (s *memStore) MaxValueBytes(context.Context) int { return s.limit }

func (s *memStore) value(key Key) ([]byte, time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[key]
	return v, s.ttls[key], ok
}

const testMaxTTL = 1000 * time.Hour

func startServer(t *testing.T, st Store, mut func(*Config)) *Server {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", MaxConnections: 16, MaxInflight: 8, IdleTimeout: time.Minute, RequestTimeout: 5 * time.Second, MaxTTL: testMaxTTL}
	if mut != nil {
		mut(&cfg)
	}
	reg := prometheus.NewRegistry()
	s := New(cfg, st, zap.NewNop(), NewMetrics(reg))
	require.NoError(t, s.Start())
	t.Cleanup(s.Stop)
	return s
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func keyOf(i int) (k Key) {
	binary.BigEndian.PutUint64(k[24:], uint64(i))
	return k
}

func send(t *testing.T, c net.Conn, ms ...Message) {
	t.Helper()
	var b []byte
	for _, m := range ms {
		var err error
		b, err = AppendEncode(b, m)
		require.NoError(t, err)
	}
	_, err := c.Write(b)
	require.NoError(t, err)
}

func recv(t *testing.T, c net.Conn) Message {
	t.Helper()
	m, err := ReadMessage(c)
	require.NoError(t, err)
	return m
}

// requireClosed: the server closed c (after the answers already read).
func requireClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

func TestNamespaceIsNoUsers(t *testing.T) {
	require.Error(t, auth.CheckUser(Namespace), "a user name could take the DHT namespace")
	require.NotRegexp(t, `^[0-9a-f]{16}$`, Namespace, "a user id could take the DHT namespace")
}

func TestPutGet(t *testing.T) {
	st := newMemStore()
	s := startServer(t, st, nil)
	c := dial(t, s)
	send(t, c, Put(keyOf(1), []byte("one"), 30, 2), Put(keyOf(2), []byte("two"), 0, 0), Get(keyOf(1)), Get(keyOf(3)))
	require.Equal(t, Success(keyOf(1), []byte("one")), recv(t, c))
	require.Equal(t, Failure(keyOf(3)), recv(t, c))
	_, ttl, _ := st.value(keyOf(1))
	require.Equal(t, 30*time.Second, ttl)
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { _, _, ok := st.value(keyOf(2)); return ok })
	_, ttl, _ = st.value(keyOf(2))
	require.Equal(t, testMaxTTL, ttl, "TTL 0 is the longest allowed")
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues(opGet, resultNotFound)))
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues(opGet, resultOK)))
}

// TestPipelined: many requests in one write, answered in request order,
// each GET seeing the PUTs sent before it on its connection, though the
// store finishes calls out of order.
func TestPipelined(t *testing.T) {
	st := newMemStore()
	st.jitter = 2 * time.Millisecond
	s := startServer(t, st, func(c *Config) { c.MaxInflight = 16 })
	c := dial(t, s)
	var reqs []Message
	var want []Message
	for i := range 100 {
		k := keyOf(i % 7)
		v := []byte{byte(i)}
		reqs = append(reqs, Put(k, v, 10, 0), Get(k))
		want = append(want, Success(k, v))
	}
	go send(t, c, reqs...)
	for i, w := range want {
		require.Equal(t, w, recv(t, c), "answer %d", i)
	}
	require.Greater(t, st.peak.Load(), int32(1), "requests ran concurrently")
	require.LessOrEqual(t, st.peak.Load(), int32(16))
}

// TestInflightBound: a connection has at most MaxInflight requests in the
// store; the rest wait unread.
func TestInflightBound(t *testing.T) {
	st := newMemStore()
	st.gate = make(chan struct{})
	s := startServer(t, st, func(c *Config) { c.MaxInflight = 3 })
	c := dial(t, s)
	var reqs []Message
	for i := range 10 {
		reqs = append(reqs, Get(keyOf(i)))
	}
	send(t, c, reqs...)
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return st.active.Load() == 3 })
	time.Sleep(50 * time.Millisecond) // nothing more starts while they hold
	require.Equal(t, int32(3), st.active.Load())
	close(st.gate)
	for i := range 10 {
		require.Equal(t, Failure(keyOf(i)), recv(t, c))
	}
	require.Equal(t, int32(3), st.peak.Load())
}

// TestMalformed: a malformed message closes its connection once the
// requests before it are answered, changes nothing, and leaves the other
// connections alone.
func TestMalformed(t *testing.T) {
	k1 := keyOf(1)
	get := func(b ...byte) []byte {
		return append([]byte{0x00, byte(HeaderSize + KeySize + len(b)), 0x02, 0x8b}, append(k1[:], b...)...)
	}
	tests := []struct {
		name string
		wire []byte
	}{
		{"size below header", []byte{0x00, 0x02, 0x02, 0x8b}},
		{"size zero", []byte{0x00, 0x00, 0x00, 0x00}},
		{"size not the body", append([]byte{0x00, 0x30, 0x02, 0x8b}, make([]byte, 44)...)},
		{"unknown type", []byte{0x00, 0x04, 0x02, 0x8e}},
		{"get with a 33-byte key", get(0x00)},
		{"put with a 31-byte key", append([]byte{0x00, 0x27, 0x02, 0x8a, 0, 1, 0, 0}, make([]byte, 31)...)},
		{"a client's SUCCESS", append([]byte{0x00, 0x24, 0x02, 0x8c}, make([]byte, 32)...)},
		{"a client's FAILURE", append([]byte{0x00, 0x24, 0x02, 0x8d}, make([]byte, 32)...)},
		{"value over the limit", func() []byte { b, _ := Encode(Put(keyOf(9), make([]byte, 101), 1, 1)); return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			st.limit = 100
			s := startServer(t, st, nil)
			other := dial(t, s)
			c := dial(t, s)
			put, err := Encode(Put(keyOf(1), []byte("before"), 1, 1))
			require.NoError(t, err)
			first, err := Encode(Get(keyOf(1)))
			require.NoError(t, err)
			after, err := Encode(Put(keyOf(2), []byte("after"), 1, 1))
			require.NoError(t, err)
			_, err = c.Write(bytes.Join([][]byte{put, first, tt.wire, after}, nil))
			require.NoError(t, err)
			require.Equal(t, Success(keyOf(1), []byte("before")), recv(t, c))
			requireClosed(t, c)
			for _, k := range []Key{keyOf(2), keyOf(9)} {
				_, _, ok := st.value(k)
				require.False(t, ok, "nothing after the malformed message applies")
			}
			send(t, other, Get(keyOf(1)))
			require.Equal(t, Success(keyOf(1), []byte("before")), recv(t, other))
			require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeMalformed)))
		})
	}
}

func TestMaxConnections(t *testing.T) {
	s := startServer(t, newMemStore(), func(c *Config) { c.MaxConnections = 2 })
	a, b := dial(t, s), dial(t, s)
	send(t, a, Get(keyOf(1)))
	send(t, b, Get(keyOf(1)))
	recv(t, a)
	recv(t, b)
	requireClosed(t, dial(t, s))
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeMaxConns)))
	_ = a.Close()
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
		c := dial(t, s)
		send(t, c, Get(keyOf(1)))
		_, err := ReadMessage(c)
		return err == nil
	}, "a slot frees when a connection closes")
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, newMemStore(), func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	c := dial(t, s)
	send(t, c, Get(keyOf(1)))
	recv(t, c)
	start := time.Now()
	requireClosed(t, c)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.closes.WithLabelValues(closeIdle)))
}

// TestStoreErrors: a GET the store cannot answer gets FAILURE; a PUT that
// fails is only counted.
func TestStoreErrors(t *testing.T) {
	st := newMemStore()
	st.gate = make(chan struct{}) // never opens: every call times out
	s := startServer(t, st, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	c := dial(t, s)
	send(t, c, Put(keyOf(1), []byte("x"), 1, 1), Get(keyOf(1)))
	require.Equal(t, Failure(keyOf(1)), recv(t, c))
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues(opPut, resultError)))
	require.Equal(t, 1.0, promtestutil.ToFloat64(s.metrics.requests.WithLabelValues(opGet, resultError)))
}

// TestStop ends requests in flight and closes the connections.
func TestStop(t *testing.T) {
	st := newMemStore()
	st.gate = make(chan struct{})
	s := startServer(t, st, nil)
	c := dial(t, s)
	send(t, c, Get(keyOf(1)))
	testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool { return st.active.Load() == 1 })
	s.Stop()
	_, err := io.ReadAll(c) // the FAILURE of the ended GET at most, then the end
	require.NoError(t, err)
	_, err = net.Dial("tcp", s.Addr().String())
	require.Error(t, err, "the listener is closed")
}
