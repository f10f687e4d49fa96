package kvserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// newLibClient connects the client library to the test cluster: through
// server s1, or with viaEtcd through the package's etcd (so that New makes
// no call on a server).
func (c *tcluster) newLibClient(t *testing.T, viaEtcd bool, mut func(*kvclient.Config), opts ...kvclient.Option) (*kvclient.Client, error) {
	t.Helper()
	cfg := kvclient.DefaultConfig()
	cfg.Servers, cfg.RequestTimeout = []string{c.node("s1").addr}, 5*time.Second
	if viaEtcd {
		cfg.Servers, cfg.EtcdEndpoints, cfg.Cluster = nil, testEtcdEndpoints, c.name
	}
	if mut != nil {
		mut(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kvclient.New(ctx, cfg, opts...)
	if err == nil {
		t.Cleanup(func() { _ = cl.Close() })
	}
	return cl, err
}

// TestLibraryRefusals: the library returns the table's errors, matched
// with errors.Is, both for what it refuses before sending and for what a
// server refuses, on the Batch stream and on unary calls.
func TestLibraryRefusals(t *testing.T) {
	c := newCluster(t, 1)
	c.waitEpoch(c.publishInitial("s1").Epoch, "s1") // limits: keys 64 bytes, values 4096
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := map[string]*kvclient.Client{}
	for name, opts := range map[string][]kvclient.Option{"batch": nil, "unary": {kvclient.WithUnaryCalls()}} {
		cl, err := c.newLibClient(t, false, nil, opts...)
		require.NoError(t, err)
		clients[name] = cl
		_, err = cl.Put(ctx, "k", []byte("v"))
		require.NoError(t, err)
	}
	type refusal struct {
		name        string
		call        func(cl *kvclient.Client) error
		want, class error
		message     string // part of the error's message
	}
	put := func(key string, value []byte, opts ...kvclient.OpOption) func(cl *kvclient.Client) error {
		return func(cl *kvclient.Client) error { _, err := cl.Put(ctx, key, value, opts...); return err }
	}
	check := func(t *testing.T, tests []refusal) {
		for _, tt := range tests {
			for name, cl := range clients {
				t.Run(tt.name+"/"+name, func(t *testing.T) {
					err := tt.call(cl)
					require.ErrorIs(t, err, tt.want)
					if tt.class != nil {
						require.ErrorIs(t, err, tt.class)
					}
					require.ErrorContains(t, err, tt.message)
				})
			}
		}
	}
	t.Run("refused by the server", func(t *testing.T) {
		check(t, []refusal{
			{"ttl over 100 years", put("k", []byte("v"), kvclient.WithTTL(200*365*24*time.Hour)), kvclient.ErrBadTTL, kvclient.ErrInvalidArgument, "ms"},
			{"login without authentication", func(cl *kvclient.Client) error { return cl.Login(ctx, "alice", "pw") }, kvclient.ErrAuthDisabled, nil, "not enabled"},
		})
	})
	t.Run("namespace not a front door's", func(t *testing.T) {
		cl, err := c.newLibClient(t, false, nil, kvclient.WithNamespace("users-ns"))
		require.NoError(t, err)
		_, err = cl.Put(ctx, "k", []byte("v"))
		require.ErrorIs(t, err, kvclient.ErrForbiddenNamespace)
		require.ErrorIs(t, err, kvclient.ErrPermissionDenied)
		require.ErrorContains(t, err, `"users-ns" is not a front door's`)
	})
	t.Run("refused before sending", func(t *testing.T) {
		check(t, []refusal{
			{"empty key", put("", []byte("v")), kvclient.ErrEmptyKey, kvclient.ErrInvalidArgument, "empty"},
			{"key too large", put(strings.Repeat("k", 65), nil), kvclient.ErrKeyTooLarge, kvclient.ErrInvalidArgument, "limit is 64"},
			{"value too large", put("k", make([]byte, 4097)), kvclient.ErrValueTooLarge, kvclient.ErrInvalidArgument, "limit is 4096"},
			{"negative ttl", put("k", nil, kvclient.WithTTL(-time.Second)), kvclient.ErrBadTTL, kvclient.ErrInvalidArgument, "-1s"},
		})
	})
	// The clients keep the ring they have, with the old limits; so the
	// server, which routes by the new one, is the one that refuses.
	r := c.publish(func(r *ringmeta.Ring) { r.Limits = ringmeta.Limits{MaxKeyBytes: 32, MaxValueBytes: 1024} })
	c.waitEpoch(r.Epoch, "s1")
	t.Run("limits refused by the server", func(t *testing.T) {
		check(t, []refusal{
			{"key too large", put(strings.Repeat("k", 40), nil), kvclient.ErrKeyTooLarge, kvclient.ErrInvalidArgument, "limit is 32"},
			{"value too large", put("k", make([]byte, 2000)), kvclient.ErrValueTooLarge, kvclient.ErrInvalidArgument, "limit is 1024"},
		})
	})
}

// TestLibraryAuthRefusals: a wrong password and a user over the rate limit
// reach the library as their errors; a member-only method refused to a
// client certificate converts to ErrMembersOnly.
func TestLibraryAuthRefusals(t *testing.T) {
	c := newAuthCluster(t, func(cfg *config.KVServer) { cfg.RateLimit, cfg.RateBurst = 1, 1 })
	_, err := c.login(t, "s1", "alice", "alice-pw") // s1 has loaded the users
	require.NoError(t, err)
	dir := c.srv("s1").cfg.CertsDir
	withCerts := func(cfg *kvclient.Config) { cfg.CertsDir = dir }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("wrong password", func(t *testing.T) {
		_, err := c.newLibClient(t, false, withCerts, kvclient.WithCredentials("alice", "wrong"))
		require.ErrorIs(t, err, kvclient.ErrBadCredentials)
		require.ErrorIs(t, err, kvclient.ErrUnauthenticated)
		require.ErrorContains(t, err, "wrong user name or password")
	})
	t.Run("rate limit", func(t *testing.T) {
		var cl *kvclient.Client
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			cl, err = c.newLibClient(t, false, withCerts, kvclient.WithCredentials("alice", "alice-pw"))
			return !errors.Is(err, kvclient.ErrTooManyAttempts) // the back-off after the wrong password
		})
		require.NoError(t, err)
		for i := 0; i < 20 && err == nil; i++ { // one request a second: the second in a row is refused
			_, err = cl.Put(ctx, "k", []byte("v"))
		}
		require.ErrorIs(t, err, kvclient.ErrRateLimited)
		require.ErrorIs(t, err, kvclient.ErrResourceExhausted)
		require.ErrorContains(t, err, `user "alice"`)
	})
	t.Run("member-only method", func(t *testing.T) {
		cc, err := grpc.NewClient(c.node("s1").addr, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ClientName)))
		require.NoError(t, err)
		defer cc.Close()
		_, err = kvpb.NewAdminClient(cc).Digest(ctx, &kvpb.DigestRequest{})
		err = kverr.FromStatus(err)
		require.ErrorIs(t, err, kverr.ErrMembersOnly)
		require.ErrorIs(t, err, kvclient.ErrPermissionDenied)
	})
}

// TestLibraryConnectionLimit: over max-connections the library returns
// ErrTooManyConnections at once, on the Batch stream, on unary calls and
// from New, instead of retrying until its deadline.
func TestLibraryConnectionLimit(t *testing.T) {
	c := newClusterWith(t, 1, func(cfg *config.KVServer) { cfg.MaxConnections = 1 },
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	c.waitEpoch(c.publishInitial("s1").Epoch, "s1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := c.newLibClient(t, true, nil)
	require.NoError(t, err)
	_, err = first.Put(ctx, "k", []byte("v"))
	require.NoError(t, err, "the first connection is admitted")

	for name, opts := range map[string][]kvclient.Option{"batch": nil, "unary": {kvclient.WithUnaryCalls()}} {
		t.Run(name, func(t *testing.T) {
			cl, err := c.newLibClient(t, true, nil, opts...)
			require.NoError(t, err, "the ring comes from etcd")
			start := time.Now()
			_, err = cl.Put(ctx, "k", []byte("v"))
			require.ErrorIs(t, err, kvclient.ErrTooManyConnections)
			require.ErrorIs(t, err, kvclient.ErrResourceExhausted)
			require.NotErrorIs(t, err, kvclient.ErrUnknownOutcome)
			require.Less(t, time.Since(start), 4*time.Second, "refused, not retried until the deadline")
		})
	}
	t.Run("new", func(t *testing.T) {
		_, err := c.newLibClient(t, false, nil)
		require.ErrorIs(t, err, kvclient.ErrTooManyConnections)
	})
}
