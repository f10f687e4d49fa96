package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestAuth has users alice (rev 10) and bob (rev 11), passwords
// "alice-pw" and "bob-pw", tokens lasting a minute.
func newTestAuth(t testing.TB) (*Authenticator, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := NewAuthenticator(bcrypt.MinCost, clk.now)
	users := map[string]User{}
	for _, n := range []string{"alice", "bob"} {
		u, err := NewUser(n, n+"-pw", bcrypt.MinCost)
		require.NoError(t, err)
		users[n] = u
	}
	a.Reset(NewConfig(time.Minute), users, map[string]int64{"alice": 10, "bob": 11}, 12)
	return a, clk
}

func TestLoginAndVerify(t *testing.T) {
	a, clk := newTestAuth(t)
	tok, exp, err := a.Login("alice", "alice-pw", "10.0.0.1")
	require.NoError(t, err)
	require.Equal(t, clk.now().Add(time.Minute), exp)
	id, err := a.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "alice", id.User)
	require.Equal(t, a.users["alice"].ns, id.NS)
	require.Regexp(t, `^[0-9a-f]{16}$`, id.NS, "the namespace is the record's id, not the name")

	t.Run("tampered token", func(t *testing.T) {
		bobTok, _, err := a.Login("bob", "bob-pw", "10.0.0.1")
		require.NoError(t, err)
		// alice's payload with bob's signature
		forged := tok[:strings.LastIndexByte(tok, '.')] + bobTok[strings.LastIndexByte(bobTok, '.'):]
		_, err = a.Verify(forged)
		require.ErrorIs(t, err, ErrInvalidToken)
	})
	t.Run("other cluster key", func(t *testing.T) {
		other := Sign(NewConfig(time.Minute).Key, Claims{User: "alice", Rev: 10, Expires: exp})
		_, err := a.Verify(other)
		require.ErrorIs(t, err, ErrInvalidToken)
	})
	t.Run("no token", func(t *testing.T) {
		_, err := a.Verify("")
		require.ErrorIs(t, err, ErrInvalidToken)
	})
	t.Run("expired", func(t *testing.T) {
		clk.add(time.Minute)
		defer clk.add(-time.Minute)
		_, err := a.Verify(tok)
		require.ErrorIs(t, err, ErrTokenExpired)
	})
	t.Run("password changed", func(t *testing.T) {
		a2, _ := newTestAuth(t)
		tok, _, err := a2.Login("bob", "bob-pw", "10.0.0.1")
		require.NoError(t, err)
		u, err := NewUser("bob", "new-pw", bcrypt.MinCost)
		require.NoError(t, err)
		a2.PutUser(u, 20)
		_, err = a2.Verify(tok)
		require.ErrorIs(t, err, ErrInvalidToken)
	})
	t.Run("removed", func(t *testing.T) {
		a.DeleteUser("alice", 30)
		_, err := a.Verify(tok)
		require.ErrorIs(t, err, ErrInvalidToken)
		_, _, err = a.Login("alice", "alice-pw", "10.0.0.1")
		require.ErrorIs(t, err, ErrBadCredentials)
	})
	t.Run("user newer than this server", func(t *testing.T) {
		a3, _ := newTestAuth(t)
		a3.mu.Lock()
		key := a3.cfg.Key
		a3.mu.Unlock()
		_, err := a3.Verify(Sign(key, Claims{User: "carol", Rev: 99, Expires: clk.now().Add(time.Second)}))
		require.ErrorIs(t, err, ErrUserUnknownYet)
	})
}

func TestLoginBackoff(t *testing.T) {
	a, clk := newTestAuth(t)
	_, _, err := a.Login("alice", "wrong", "10.0.0.1")
	require.ErrorIs(t, err, ErrBadCredentials)
	// Right away, even the right password waits out the back-off.
	_, _, err = a.Login("alice", "alice-pw", "10.0.0.1")
	require.ErrorIs(t, err, ErrTooManyAttempts)
	require.ErrorContains(t, err, "retry in 100ms")
	// Each failure doubles the wait.
	var waits []time.Duration
	for range 4 {
		clk.add(maxBackoff)
		_, _, err = a.Login("alice", "wrong", "10.0.0.1")
		require.ErrorIs(t, err, ErrBadCredentials)
		f, _ := a.fails.Get("alice\x0010.0.0.1")
		waits = append(waits, f.until.Sub(clk.now()))
	}
	require.Equal(t, []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}, waits)
	// Other users are not affected; unknown names back off too.
	_, _, err = a.Login("bob", "bob-pw", "10.0.0.1")
	require.NoError(t, err)
	_, _, err = a.Login("nobody", "pw", "10.0.0.1")
	require.ErrorIs(t, err, ErrBadCredentials)
	_, _, err = a.Login("nobody", "pw", "10.0.0.1")
	require.ErrorIs(t, err, ErrTooManyAttempts)
	// A success clears the count.
	clk.add(maxBackoff)
	_, _, err = a.Login("alice", "alice-pw", "10.0.0.1")
	require.NoError(t, err)
	_, _, err = a.Login("alice", "wrong", "10.0.0.1")
	require.ErrorIs(t, err, ErrBadCredentials)
	f, _ := a.fails.Get("alice\x0010.0.0.1")
	require.Equal(t, baseBackoff, f.until.Sub(clk.now()))
	for range 30 {
		clk.add(maxBackoff)
		_, _, _ = a.Login("alice", "wrong", "10.0.0.1")
	}
	f, _ = a.fails.Get("alice\x0010.0.0.1")
	require.Equal(t, maxBackoff, f.until.Sub(clk.now()), "the wait is capped")
}

func TestLoginBusy(t *testing.T) {
	a, _ := newTestAuth(t)
	held := 0
	for a.gate.acquire("10.0.0.9", false, 0) { // every bcrypt slot taken
		held++
	}
	_, _, err := a.Login("alice", "alice-pw", "10.0.0.1")
	require.ErrorIs(t, err, ErrBusy)
	for range held {
		a.gate.release()
	}
	_, _, err = a.Login("alice", "alice-pw", "10.0.0.1")
	require.NoError(t, err)
}

// TestLoginBackoffPerAddress: wrong passwords sent from one address never
// lock the user out at another; a flood of names from one address backs
// that address off after a few failures, and no other.
func TestLoginBackoffPerAddress(t *testing.T) {
	a, clk := newTestAuth(t)
	for range 50 {
		_, _, _ = a.Login("alice", "wrong", "10.0.0.9")
		clk.add(50 * time.Millisecond)
	}
	_, _, err := a.Login("alice", "alice-pw", "10.0.0.1")
	require.NoError(t, err, "the real alice, elsewhere, is not locked out")

	clk.add(maxBackoff)
	for i := range sourceFreeFailures {
		_, _, err = a.Login(fmt.Sprintf("guess%d", i), "pw", "10.0.0.7")
		require.ErrorIs(t, err, ErrBadCredentials)
	}
	_, _, err = a.Login("guess-next", "pw", "10.0.0.7")
	require.ErrorIs(t, err, ErrBadCredentials, "the first failure past the free ones still costs a comparison")
	_, _, err = a.Login("bob", "bob-pw", "10.0.0.7")
	require.ErrorIs(t, err, ErrTooManyAttempts, "then the address backs off, whatever the name")
	require.ErrorContains(t, err, "from 10.0.0.7")
	_, _, err = a.Login("bob", "bob-pw", "10.0.0.1")
	require.NoError(t, err, "other addresses are not affected")
}

// TestGateFair: a freed bcrypt slot goes to the next address in turn, not
// to the address with the most logins waiting.
func TestGateFair(t *testing.T) {
	g := newGate(1, 4, 16)
	require.True(t, g.acquire("hold", false, 0))
	order := make(chan string, 8)
	wait := func(src string, suspect bool, n int) {
		for range n {
			go func() {
				if g.acquire(src, suspect, time.Minute) {
					order <- src
				}
			}()
		}
		require.Eventually(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			n0 := len(g.queues[gateKey{src, 0}]) + len(g.queues[gateKey{src, 1}])
			return n0 == n
		}, 5*time.Second, time.Millisecond)
	}
	wait("flood", false, 4)
	wait("real", false, 1)
	wait("suspect", true, 2)
	wait("clean", false, 1)
	require.False(t, g.acquire("flood", false, 0), "an address may queue only perSource logins")
	var got []string
	for range 8 {
		g.release()
		got = append(got, <-order)
	}
	require.Equal(t, []string{"flood", "real", "clean", "flood", "flood", "flood", "suspect", "suspect"}, got,
		"addresses in turn, those with failures last")
	g.release()
	require.True(t, g.acquire("x", true, 0), "the last release frees the slot")
}

func TestLoginInput(t *testing.T) {
	a, _ := newTestAuth(t)
	for _, tt := range []struct{ user, pw string }{
		{"", "pw"}, {"a\x00b", "pw"}, {strings.Repeat("a", 64), "pw"}, {"-a", "pw"},
		{"alice", ""}, {"alice", strings.Repeat("p", 73)},
	} {
		_, _, err := a.Login(tt.user, tt.pw, "10.0.0.1")
		require.True(t, errors.Is(err, ErrBadUser) || errors.Is(err, ErrBadPassword), "%q/%q: %v", tt.user, tt.pw, err)
	}
	notLoaded := NewAuthenticator(bcrypt.MinCost, nil)
	_, _, err := notLoaded.Login("alice", "pw", "10.0.0.1")
	require.ErrorIs(t, err, ErrNotReady)
	_, err = notLoaded.Verify("v1.x.y")
	require.ErrorIs(t, err, ErrNotReady)
}

func TestRecords(t *testing.T) {
	u, err := NewUser("alice", "pw", bcrypt.MinCost)
	require.NoError(t, err)
	got, err := UnmarshalUser(u.Marshal())
	require.NoError(t, err)
	require.Equal(t, u, got)
	_, err = UnmarshalUser([]byte(`{"name":"alice","hash":"bm90IGEgaGFzaA=="}`))
	require.Error(t, err)
	_, err = UnmarshalUser([]byte(`{"name":"../x"}`))
	require.ErrorIs(t, err, ErrBadUser)

	c := NewConfig(time.Minute)
	gc, err := UnmarshalConfig(c.Marshal())
	require.NoError(t, err)
	require.Equal(t, c, gc)
	_, err = UnmarshalConfig([]byte(`{"key":"c2hvcnQ=","token_ttl_ms":60000}`))
	require.Error(t, err)
}

// BenchmarkVerify is the cost every key operation pays on a cluster with
// authentication.
func BenchmarkVerify(b *testing.B) {
	a, _ := newTestAuth(b)
	tok, _, err := a.Login("alice", "alice-pw", "10.0.0.1")
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestUserIDs(t *testing.T) {
	a, _ := NewUser("carol", "pw", bcrypt.MinCost)
	b, _ := NewUser("carol", "pw", bcrypt.MinCost)
	require.Regexp(t, `^[0-9a-f]{16}$`, a.ID)
	require.NotEqual(t, a.ID, b.ID, "a name added again gets a new id")
	require.Equal(t, a.ID, a.Namespace())

	legacy, err := UnmarshalUser([]byte(`{"name":"carol","hash":"` + b64std(a.Hash) + `","created_unix_ms":1}`))
	require.NoError(t, err, "a record older than ids still loads")
	require.Equal(t, "carol", legacy.Namespace(), "and keeps its name as namespace")

	for _, id := range []string{"0123", "0123456789ABCDEF", "0123456789abcdeg", "../0123456789abc"} {
		bad := a
		bad.ID = id
		_, err := UnmarshalUser(bad.Marshal())
		require.ErrorIs(t, err, ErrBadID, id)
	}

	r := NewRemoval(a)
	got, err := UnmarshalRemoval(r.Marshal())
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.Equal(t, a.ID, got.Namespace())
	require.Equal(t, "carol", NewRemoval(legacy).Namespace())
	_, err = UnmarshalRemoval([]byte(`{"name":"carol","id":"x"}`))
	require.ErrorIs(t, err, ErrBadID)
}

// TestNamespaceFollowsRecord: a token resolves to the namespace of the
// record it was issued against; carol removed and added again is a new
// namespace, and her old token resolves to nothing.
func TestNamespaceFollowsRecord(t *testing.T) {
	a, _ := newTestAuth(t)
	carol, err := NewUser("carol", "pw", bcrypt.MinCost)
	require.NoError(t, err)
	a.PutUser(carol, 20)
	old, _, err := a.Login("carol", "pw", "10.0.0.1")
	require.NoError(t, err)
	id, err := a.Verify(old)
	require.NoError(t, err)
	require.Equal(t, Identity{User: "carol", NS: carol.ID}, id)

	a.DeleteUser("carol", 21)
	again, err := NewUser("carol", "pw", bcrypt.MinCost)
	require.NoError(t, err)
	a.PutUser(again, 22)
	_, err = a.Verify(old)
	require.ErrorIs(t, err, ErrInvalidToken, "the removed carol's token")
	tok, _, err := a.Login("carol", "pw", "10.0.0.1")
	require.NoError(t, err)
	id, err = a.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, again.ID, id.NS)
	require.NotEqual(t, carol.ID, id.NS)

	legacy := again
	legacy.ID = ""
	a.PutUser(legacy, 23)
	tok, _, err = a.Login("carol", "pw", "10.0.0.1")
	require.NoError(t, err)
	id, err = a.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, "carol", id.NS, "a record without id: the name")
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestKnows: a user is known once loaded with a key, and not after the
// record is deleted; nothing is known before the first load.
func TestKnows(t *testing.T) {
	require.False(t, NewAuthenticator(bcrypt.MinCost, nil).Knows("alice"), "before any load")
	a, _ := newTestAuth(t)
	require.True(t, a.Knows("alice"))
	require.False(t, a.Knows("carol"))
	a.DeleteUser("alice", 13)
	require.False(t, a.Knows("alice"))
	a.SetConfig(Config{}, 14) // the key deleted
	require.False(t, a.Knows("bob"), "no key: no login can succeed")
}
