package resp

import (
	"context"
	"time"
)

// Cluster is the cluster as the front door sees it.
type Cluster interface {
	// Anonymous is the backend of a connection that has not logged in:
	// the namespace of library clients without a login.
	Anonymous() Backend
	// AuthRequired reports whether the cluster has users, so a
	// connection must AUTH before any key command.
	AuthRequired() bool
	// Login checks user's password (from is the client's address, for
	// the back-off after failed logins) and returns a backend in the
	// user's namespace and a function to call once the connection no
	// longer uses it. ErrBadCredentials and ErrAuthDisabled are matched
	// by errors.Is.
	Login(ctx context.Context, user, password, from string) (Backend, func(), error)
	// MaxArgBytes is the largest key or value the cluster stores; 0 while
	// it is not known yet.
	MaxArgBytes() int
}

// Entry is a key's value and what the cluster knows of it.
type Entry struct {
	Value   []byte
	TTL     time.Duration // time left to live; 0: none
	Version uint64        // grows with every write of the key
}

// SetOptions are the conditions and extras of a Set.
type SetOptions struct {
	TTL            time.Duration // 0: none
	IfAbsent       bool          // NX
	IfExists       bool          // XX
	ReturnPrevious bool          // GET: report the value before the put
	// IfVersion, when CheckVersion, makes the put conditional on the key's
	// version (0: absent), as GetEntry read it.
	IfVersion    uint64
	CheckVersion bool
}

// SetResult is what a Set found: with ReturnPrevious, whether a live value
// existed and which.
type SetResult struct {
	Existed  bool
	Previous []byte
}

// Backend runs the key operations of one connection in its namespace.
type Backend interface {
	// Get returns key's value, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetEntry returns key's value, remaining time to live and version,
	// or ErrNotFound.
	GetEntry(ctx context.Context, key string) (Entry, error)
	// MGet reads keys; a missing key's value is nil.
	MGet(ctx context.Context, keys []string) ([][]byte, error)
	// Set stores value under key; ErrConditionFailed when o's condition
	// does not hold (with ReturnPrevious the result is still filled in).
	Set(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error)
	// MSet stores every pair, not atomically.
	MSet(ctx context.Context, kvs []KV) error
	// Delete removes key, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to key's integer (absent is 0), keeping its TTL.
	// ErrNotInteger, ErrOverflow.
	Incr(ctx context.Context, key string, delta int64) (int64, error)
	// Expire sets key's time to live, or returns ErrNotFound.
	Expire(ctx context.Context, key string, ttl time.Duration) error
	// Persist removes key's expiry, or returns ErrNotFound.
	Persist(ctx context.Context, key string) error
	// Scan returns the next page of keys that start with prefix, from
	// cursor ("" starts), and the cursor to pass next ("" at the end).
	Scan(ctx context.Context, prefix, cursor string, count int) ([]string, string, error)
}

// KV is one pair of an MSET.
type KV struct {
	Key   string
	Value []byte
}
