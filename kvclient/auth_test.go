package kvclient

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// authServer is one fake kvserver of a cluster with authentication: it
// issues tokens "tok-N" (password "pw") that it accepts until revoked or
// expired, and answers a Get with the caller's user.
type authServer struct {
	kvpb.UnimplementedKVServer
	addr string
	ttl  time.Duration

	mu      sync.Mutex
	logins  int
	valid   map[string]time.Time // token -> expiry
	users   map[string]string    // token -> user
	getUser string               // user of the last Get
	ns      map[string]string    // user -> namespace Login names (none: an older server)
}

func startAuthServer(t *testing.T, ttl time.Duration) *authServer {
	t.Helper()
	lis := listen(t)
	s := &authServer{addr: lis.Addr().String(), ttl: ttl, valid: map[string]time.Time{}, users: map[string]string{}}
	serveKV(t, lis, s)
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

// serveKV serves srv on lis until the test ends.
func serveKV(t *testing.T, lis net.Listener, srv kvpb.KVServer) {
	g := grpc.NewServer()
	kvpb.RegisterKVServer(g, srv)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
}

func (s *authServer) GetRing(context.Context, *kvpb.GetRingRequest) (*kvpb.RingResponse, error) {
	return oneServerRing(s.addr, true)
}

// oneServerRing is the ring of a fake one-server cluster at addr (keys
// and values up to 64 bytes).
func oneServerRing(addr string, auth bool) (*kvpb.RingResponse, error) {
	r := &ringmeta.Ring{
		Epoch: 1, Partitions: 1, Replicas: 1, Auth: auth,
		Limits:  ringmeta.Limits{MaxKeyBytes: 64, MaxValueBytes: 64},
		Servers: []ringmeta.Server{{ID: "s1", Addr: addr, State: ringmeta.StateActive}},
		Chains:  []ringmeta.Chain{{Members: []string{"s1"}, Version: 1}},
	}
	raw, err := r.Marshal()
	return &kvpb.RingResponse{Epoch: 1, Ring: raw}, err
}

func (s *authServer) Login(_ context.Context, r *kvpb.LoginRequest) (*kvpb.LoginResponse, error) {
	if r.Password != "pw" {
		return nil, status.Error(codes.Unauthenticated, "auth: wrong user name or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins++
	tok, exp := fmt.Sprintf("tok-%d", s.logins), time.Now().Add(s.ttl)
	s.valid[tok], s.users[tok] = exp, r.User
	return &kvpb.LoginResponse{Token: tok, ExpiresUnixMs: exp.UnixMilli(), Namespace: s.ns[r.User]}, nil
}

func (s *authServer) Get(_ context.Context, r *kvpb.GetRequest) (*kvpb.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns := r.Header.GetNamespace(); ns != "" {
		return &kvpb.Response{Status: kvpb.Status_SUCCESS, Value: []byte("in " + ns), Epoch: 1}, nil
	}
	tok := r.Header.GetToken()
	if exp, ok := s.valid[tok]; !ok || time.Now().After(exp) {
		return nil, status.Error(codes.Unauthenticated, "auth: invalid token")
	}
	s.getUser = s.users[tok]
	return &kvpb.Response{Status: kvpb.Status_SUCCESS, Value: []byte(s.users[tok]), Epoch: 1}, nil
}

func (s *authServer) revokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.valid)
}

func (s *authServer) loginCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func newAuthClient(t *testing.T, s *authServer, opts ...Option) (*Client, error) {
	t.Helper()
	cfg := config.DefaultClient()
	cfg.Servers = []string{s.addr}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, cfg, opts...)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong password fails New", func(t *testing.T) {
		s := startAuthServer(t, time.Minute)
		_, err := newAuthClient(t, s, WithCredentials("alice", "nope"))
		require.ErrorIs(t, err, ErrUnauthenticated)
	})
	t.Run("no credentials", func(t *testing.T) {
		s := startAuthServer(t, time.Minute)
		c, err := newAuthClient(t, s)
		require.NoError(t, err)
		_, err = c.Get(ctx, "k")
		require.ErrorIs(t, err, ErrLoginRequired)
		require.NoError(t, c.Login(ctx, "bob", "pw"))
		v, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "bob", string(v))
		c.Logout()
		_, err = c.Get(ctx, "k")
		require.ErrorIs(t, err, ErrLoginRequired)
	})
	t.Run("logs in again when a token is refused", func(t *testing.T) {
		s := startAuthServer(t, time.Minute)
		c, err := newAuthClient(t, s, WithCredentials("alice", "pw"))
		require.NoError(t, err)
		require.Equal(t, 1, s.loginCount(), "New logs in at once")
		_, err = c.Get(ctx, "k")
		require.NoError(t, err)
		s.revokeAll()
		v, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "alice", string(v))
		require.Equal(t, 2, s.loginCount())
	})
	t.Run("keys route by the namespace the server names", func(t *testing.T) {
		s := startAuthServer(t, time.Minute)
		s.ns = map[string]string{"carol": "0123456789abcdef"}
		c, err := newAuthClient(t, s, WithCredentials("carol", "pw"))
		require.NoError(t, err)
		_, ns, err := c.token(ctx, "")
		require.NoError(t, err)
		require.Equal(t, "0123456789abcdef", ns, "the user's id, not the name")
		require.NoError(t, c.Login(ctx, "dave", "pw"))
		_, ns, err = c.token(ctx, "")
		require.NoError(t, err)
		require.Equal(t, "dave", ns, "a server that names none: the user name")
	})
	t.Run("a namespace of its own: no login, every call names it", func(t *testing.T) {
		s := startAuthServer(t, time.Minute)
		c, err := newAuthClient(t, s, WithNamespace("_dht"))
		require.NoError(t, err)
		v, err := c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "in _dht", string(v))
		require.Zero(t, s.loginCount())
		bo := toBatchOp(ctx, &op{kind: opGet, key: []byte("k"), header: &kvpb.RequestHeader{Namespace: "_dht"}})
		require.Equal(t, "_dht", bo.GetGet().GetHeader().GetNamespace(), "the Batch stream carries it too")
	})
	t.Run("renews a token before it expires", func(t *testing.T) {
		s := startAuthServer(t, 500*time.Millisecond)
		c, err := newAuthClient(t, s, WithCredentials("alice", "pw"))
		require.NoError(t, err)
		time.Sleep(450 * time.Millisecond) // past 80% of the lifetime
		_, err = c.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, 2, s.loginCount(), "an aging token is replaced")
	})
}
