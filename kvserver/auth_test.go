package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// newAuthCluster starts a three-server chain with authentication and the
// users alice and bob (passwords alice-pw, bob-pw), over mutual TLS.
func newAuthCluster(t *testing.T, configure func(*config.KVServer)) *tcluster {
	t.Helper()
	c, _ := newTLSCluster(t, 3, configure)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.cli.Put(ctx, etcdkeys.Auth(c.name), string(auth.NewConfig(time.Minute).Marshal()))
	require.NoError(t, err)
	for _, n := range []string{"alice", "bob"} {
		u, err := auth.NewUser(n, n+"-pw", bcrypt.MinCost)
		require.NoError(t, err)
		_, err = c.cli.Put(ctx, etcdkeys.User(c.name, n), string(u.Marshal()))
		require.NoError(t, err)
	}
	r := c.publishInitial("s1", "s2", "s3")
	r = c.publish(func(r *ringmeta.Ring) { r.Auth = true })
	c.waitEpoch(r.Epoch, "s1", "s2", "s3")
	// The key and the users come on separate watches: a server may have
	// the key before it has every user, and a login then fails as a wrong
	// password would.
	for _, id := range []string{"s1", "s2", "s3"} {
		a := c.node(id).srv.auth
		testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
			return a.Knows("alice") && a.Knows("bob")
		})
	}
	return c
}

func (c *tcluster) login(t *testing.T, id, user, pw string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var resp *kvpb.LoginResponse
	var err error
	// The servers load the users a moment after they start.
	testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		resp, err = c.kv(id).Login(ctx, &kvpb.LoginRequest{User: user, Password: pw})
		return status.Code(err) != codes.Unavailable
	})
	if err != nil {
		return "", err
	}
	return resp.Token, nil
}

// kvAs runs one operation as the holder of token: put when value is
// non-nil, delete when del, get otherwise. Writes go to the head (s1),
// reads to the tail (s3).
func (c *tcluster) kvAs(t *testing.T, token, key string, value []byte, del bool) (resp *kvpb.Response, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := &kvpb.RequestHeader{Token: token, ClientId: 77, Seq: uint64(time.Now().UnixNano())}
	// Retried while the partition is not ready yet (a chain's first
	// reconciliation after the start), as a client does.
	testutil.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool {
		switch {
		case del:
			resp, err = c.kv("s1").Delete(ctx, &kvpb.DeleteRequest{Header: h, Key: []byte(key)})
		case value != nil:
			resp, err = c.kv("s1").Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte(key), Value: value})
		default:
			resp, err = c.kv("s3").Get(ctx, &kvpb.GetRequest{Header: h, Key: []byte(key)})
		}
		return err != nil || settled(resp)
	}, "%s not settled", key)
	return resp, err
}

func TestAuthNamespaces(t *testing.T) {
	c := newAuthCluster(t, nil)
	alice, err := c.login(t, "s2", "alice", "alice-pw")
	require.NoError(t, err)
	bob, err := c.login(t, "s3", "bob", "bob-pw")
	require.NoError(t, err)

	t.Run("login names the user's id as namespace", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.kv("s1").Login(ctx, &kvpb.LoginRequest{User: "alice", Password: "alice-pw"})
		require.NoError(t, err)
		require.Equal(t, c.userNS(t, "alice"), resp.Namespace)
		require.NotEqual(t, "alice", resp.Namespace)
	})
	t.Run("without a token every key operation is refused", func(t *testing.T) {
		for _, tok := range []string{"", "v1.garbage.sig", alice[:len(alice)-2] + "xx"} {
			for _, op := range []struct {
				value []byte
				del   bool
			}{{value: []byte("v")}, {del: true}, {}} {
				_, err := c.kvAs(t, tok, "k", op.value, op.del)
				require.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", tok, err)
			}
		}
	})

	resp, err := c.kvAs(t, alice, "k", []byte("alice's"), false)
	require.NoError(t, err)
	require.Equal(t, kvpb.Status_SUCCESS, resp.Status)

	t.Run("bob cannot read alice's key", func(t *testing.T) {
		resp, err := c.kvAs(t, bob, "k", nil, false)
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_NOT_FOUND, resp.Status)
	})
	t.Run("bob cannot delete alice's key", func(t *testing.T) {
		resp, err := c.kvAs(t, bob, "k", nil, true)
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_NOT_FOUND, resp.Status)
	})
	t.Run("bob's put creates his own key", func(t *testing.T) {
		resp, err := c.kvAs(t, bob, "k", []byte("bob's"), false)
		require.NoError(t, err)
		require.Equal(t, kvpb.Status_SUCCESS, resp.Status, "a new key in bob's namespace, not an update of alice's")
		resp, err = c.kvAs(t, alice, "k", nil, false)
		require.NoError(t, err)
		require.Equal(t, "alice's", string(resp.Value))
		resp, err = c.kvAs(t, bob, "k", nil, false)
		require.NoError(t, err)
		require.Equal(t, "bob's", string(resp.Value))
	})
	t.Run("one request id in two namespaces is two writes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, tok := range []string{alice, bob} {
			h := &kvpb.RequestHeader{Token: tok, ClientId: 5, Seq: 9}
			resp, err := c.kv("s1").Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte("same-id"), Value: []byte(tok[:8])})
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status, "not taken for a retry of the other user's write")
			// The same request again is a retry: answered, not applied twice.
			resp, err = c.kv("s1").Put(ctx, &kvpb.PutRequest{Header: h, Key: []byte("same-id"), Value: []byte(tok[:8])})
			require.NoError(t, err)
			require.Equal(t, kvpb.Status_SUCCESS, resp.Status)
			resp, err = c.kvAs(t, tok, "same-id", nil, false)
			require.NoError(t, err)
			require.Equal(t, tok[:8], string(resp.Value))
		}
	})
	t.Run("replicas agree on both namespaces", func(t *testing.T) {
		c.waitConverged([]string{"s1", "s2", "s3"}, []int{partOfNS(c.userNS(t, "alice"), "k"), partOfNS(c.userNS(t, "bob"), "k")}, 5*time.Second)
	})
	t.Run("a removed user's token stops working", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.cli.Delete(ctx, etcdkeys.User(c.name, "bob"))
		require.NoError(t, err)
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			_, err := c.kvAs(t, bob, "k", nil, false)
			return status.Code(err) == codes.Unauthenticated
		}, "bob's token still works")
		_, err = c.kvAs(t, alice, "k", nil, false)
		require.NoError(t, err)
	})
}

// userNS is the namespace of user name's record in etcd.
func (c *tcluster) userNS(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, etcdkeys.User(c.name, name))
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "no user %s", name)
	u, err := auth.UnmarshalUser(resp.Kvs[0].Value)
	require.NoError(t, err)
	return u.Namespace()
}

func partOfNS(ns, key string) int {
	return ringmeta.Partition(ringmeta.KeyHash([]byte(ns), []byte(key)), testPartitions)
}

func TestAuthLogin(t *testing.T) {
	c := newAuthCluster(t, func(cfg *config.KVServer) { cfg.RateLimit, cfg.RateBurst = 5, 5 })
	_, err := c.login(t, "s1", "alice", "wrong")
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	// Four more failures (waiting out each back-off) make the wait 1.6s, long
	// enough for the next call to land in it on a loaded machine.
	for fails := 1; fails < 5; {
		_, err = c.login(t, "s1", "alice", "wrong")
		if status.Code(err) == codes.Unauthenticated {
			fails++
		} else {
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			time.Sleep(50 * time.Millisecond)
		}
	}
	_, err = c.login(t, "s1", "alice", "alice-pw")
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "right after failures even the right password waits: %v", err)
	require.ErrorContains(t, err, "retry in")
	_, err = c.login(t, "s1", "", "x")
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	tok, err := c.login(t, "s2", "alice", "alice-pw")
	require.NoError(t, err, "back-off is per server and per user")
	t.Run("rate limit per user", func(t *testing.T) {
		var limited error
		for range 20 {
			if _, err := c.kvAs(t, tok, "k", nil, false); err != nil {
				limited = err
				break
			}
		}
		require.Equal(t, codes.ResourceExhausted, status.Code(limited), "%v", limited)
		require.ErrorContains(t, limited, "requests/s")
	})
}

func TestScopedClientID(t *testing.T) {
	require.Equal(t, uint64(42), scopedClientID(nil, 42), "unchanged without authentication")
	require.Equal(t, uint64(0), scopedClientID([]byte("alice"), 0), "internal writes stay unmarked")
	a, b := scopedClientID([]byte("alice"), 42), scopedClientID([]byte("bob"), 42)
	require.NotEqual(t, a, b)
	require.NotEqual(t, uint64(42), a)
	require.Equal(t, a, scopedClientID([]byte("alice"), 42), "a retry at another head derives the same id")
	require.NotEqual(t, scopedClientID([]byte("ab"), 42), scopedClientID([]byte("a"), 42))
}
