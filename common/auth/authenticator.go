package auth

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"
)

// Back-off after failed logins. Per (user name, client address): the n-th
// failure in a row blocks that pair for baseBackoff*2^(n-1), at most
// maxBackoff, and a success clears it; keyed by address too, so wrong
// passwords sent from elsewhere never lock the real user out. Per client
// address, any name: past sourceFreeFailures failures in a row the
// address backs off the same way, so a flood of guesses or unknown names
// from one address is refused before it costs a bcrypt comparison.
// Tracking is bounded (maxTracked entries each, least recent dropped).
const (
	baseBackoff        = 100 * time.Millisecond
	maxBackoff         = 10 * time.Second
	maxTracked         = 10000
	sourceFreeFailures = 5
	// busyWait is how long a login waits for a bcrypt slot: a flood of
	// logins (each costs tens of milliseconds of CPU on purpose) is refused
	// instead of starving the server's key operations.
	busyWait = time.Second
	// queuedPerSource and queuedSources bound the logins waiting for a
	// bcrypt slot: per client address, and addresses at once.
	queuedPerSource = 4
	queuedSources   = 1024
)

type userEntry struct {
	hash []byte
	rev  int64
	ns   string // User.Namespace
}

// Identity is whom a valid token speaks for.
type Identity struct {
	User string // the name: for per-user limits and messages
	// NS is the namespace of the user's keys, from the record the token was
	// issued against (User.Namespace): never the name alone, so a user of
	// the same name added later does not reach them.
	NS string
}

type failures struct {
	count int
	until time.Time
}

// Authenticator logs users in and verifies tokens from the users and
// config it is given (a kvserver feeds it from etcd watches).
type Authenticator struct {
	cost      int              // bcrypt cost of the dummy hash for unknown names
	now       func() time.Time // injectable clock for tests
	dummyOnce sync.Once
	dummy     []byte // compared against for unknown users, so timing does not tell
	gate      *gate  // bounds concurrent bcrypt comparisons, fair among addresses

	mu     sync.RWMutex // guards the fields below; Verify, on every request, only reads
	cfg    Config
	loaded bool
	users  map[string]userEntry
	rev    int64                        // etcd revision the users are known at
	fails  *lru.Cache[string, failures] // by user name and client address
	srcs   *lru.Cache[string, failures] // by client address
}

// NewAuthenticator returns an Authenticator with no users; cost is the
// bcrypt cost the cluster's hashes use (bcrypt.DefaultCost).
func NewAuthenticator(cost int, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	fails, _ := lru.New[string, failures](maxTracked) // size > 0: cannot fail
	srcs, _ := lru.New[string, failures](maxTracked)
	return &Authenticator{
		cost: cost, now: now, users: map[string]userEntry{}, fails: fails, srcs: srcs,
		gate: newGate(max(1, runtime.GOMAXPROCS(0)/2), queuedPerSource, queuedSources),
	}
}

// Reset replaces every user and the config with a fresh load taken at
// etcd revision rev.
func (a *Authenticator) Reset(cfg Config, users map[string]User, revs map[string]int64, rev int64) {
	m := make(map[string]userEntry, len(users))
	for name, u := range users {
		m[name] = userEntry{hash: u.Hash, rev: revs[name], ns: u.Namespace()}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.users, a.rev, a.loaded = cfg, m, rev, true
}

// SetConfig installs a new key or token lifetime.
func (a *Authenticator) SetConfig(cfg Config, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.rev = cfg, max(a.rev, rev)
}

// PutUser adds or replaces a user as of record revision rev.
func (a *Authenticator) PutUser(u User, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[u.Name] = userEntry{hash: u.Hash, rev: rev, ns: u.Namespace()}
	a.rev = max(a.rev, rev)
}

// DeleteUser removes a user at revision rev: their tokens stop working.
func (a *Authenticator) DeleteUser(name string, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, name)
	a.rev = max(a.rev, rev)
}

// Knows reports whether users and a key are loaded and name is among the
// users.
func (a *Authenticator) Knows(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.users[name]
	return a.readyLocked() && ok
}

// Login checks user's password and returns a token and its expiry. from
// is the client's address (its IP): back-off and the bcrypt budget are
// shared out by it.
func (a *Authenticator) Login(user, password, from string) (string, time.Time, error) {
	if err := CheckUser(user); err != nil {
		return "", time.Time{}, err
	}
	if err := CheckPassword(password); err != nil {
		return "", time.Time{}, err
	}
	now := a.now()
	pair := user + "\x00" + from
	a.mu.Lock()
	if !a.readyLocked() {
		a.mu.Unlock()
		return "", time.Time{}, ErrNotReady
	}
	sf, suspect := a.srcs.Get(from)
	if suspect && now.Before(sf.until) {
		a.mu.Unlock()
		return "", time.Time{}, fmt.Errorf("%w from %s: retry in %v", ErrTooManyAttempts, from, sf.until.Sub(now).Round(time.Millisecond))
	}
	if f, ok := a.fails.Get(pair); ok && now.Before(f.until) {
		a.mu.Unlock()
		return "", time.Time{}, fmt.Errorf("%w for %q: retry in %v", ErrTooManyAttempts, user, f.until.Sub(now).Round(time.Millisecond))
	}
	e, known := a.users[user]
	cfg := a.cfg
	a.mu.Unlock()

	// bcrypt outside the lock: it takes tens of milliseconds on purpose.
	if !a.gate.acquire(from, suspect, busyWait) {
		return "", time.Time{}, ErrBusy
	}
	defer a.gate.release()
	hash := e.hash
	if !known {
		a.dummyOnce.Do(func() { a.dummy, _ = bcrypt.GenerateFromPassword([]byte("ecskv dummy password"), a.cost) })
		hash = a.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !known {
		a.failed(pair, from, now)
		return "", time.Time{}, ErrBadCredentials
	}
	a.mu.Lock()
	a.fails.Remove(pair)
	a.srcs.Remove(from)
	a.mu.Unlock()
	exp := now.Add(time.Duration(cfg.TokenTTLMs) * time.Millisecond)
	return Sign(cfg.Key, Claims{User: user, Rev: e.rev, Expires: exp}), exp, nil
}

// failed records a failed login of pair (user and address) from address
// from at now.
func (a *Authenticator) failed(pair, from string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	addFailure(a.fails, pair, now, 0)
	addFailure(a.srcs, from, now, sourceFreeFailures)
}

// addFailure counts one more failure of key; past free failures in a row
// it blocks key for baseBackoff doubled per further failure, at most
// maxBackoff.
func addFailure(c *lru.Cache[string, failures], key string, now time.Time, free int) {
	f, _ := c.Get(key)
	f.count++
	if n := f.count - free; n > 0 {
		d := maxBackoff
		if n < 20 { // 100ms << 19 is far past the cap
			d = min(baseBackoff<<(n-1), maxBackoff)
		}
		f.until = now.Add(d)
	}
	c.Add(key, f)
}

// Verify returns the user a token was issued to and their namespace, if
// the token is still valid here. The token names the user and the revision
// of their record; the namespace comes from that record, which a removal
// deletes and a re-add replaces (with a new id and revision).
func (a *Authenticator) Verify(token string) (Identity, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.readyLocked() {
		return Identity{}, ErrNotReady
	}
	if token == "" {
		return Identity{}, fmt.Errorf("%w: log in first", ErrInvalidToken)
	}
	c, err := Parse(a.cfg.Key, token)
	if err != nil {
		return Identity{}, err
	}
	if !a.now().Before(c.Expires) {
		return Identity{}, ErrTokenExpired
	}
	e, ok := a.users[c.User]
	switch {
	case ok && e.rev == c.Rev:
		return Identity{User: c.User, NS: e.ns}, nil
	case c.Rev > a.rev:
		return Identity{}, ErrUserUnknownYet
	}
	return Identity{}, fmt.Errorf("%w: user %q was removed or changed", ErrInvalidToken, c.User)
}

// readyLocked reports whether users and a key are loaded: without a key
// anyone could sign tokens. a.mu must be held.
func (a *Authenticator) readyLocked() bool { return a.loaded && len(a.cfg.Key) == KeyBytes }
