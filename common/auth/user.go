package auth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is bcrypt's limit: it ignores what follows.
const MaxPasswordBytes = 72

// userRE is the syntax of user names: they are key namespaces, so they
// never hold the 0x00 that ends a namespace in the storage key.
var userRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckUser validates a user name.
func CheckUser(name string) error {
	if !userRE.MatchString(name) {
		return fmt.Errorf("%w, got %q", ErrBadUser, Truncate(name))
	}
	return nil
}

// maxEcho is how much of a client-supplied name an error or log line
// repeats.
const maxEcho = 64

// Truncate shortens a client-supplied string for an error or a log line.
func Truncate(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + fmt.Sprintf("...(%d bytes)", len(s))
}

// CheckPassword validates a password's length.
func CheckPassword(pw string) error {
	if len(pw) == 0 || len(pw) > MaxPasswordBytes {
		return fmt.Errorf("%w, got %d bytes", ErrBadPassword, len(pw))
	}
	return nil
}

// idRE is the syntax of user ids: IDBytes random bytes in lower-case hex.
var idRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// IDBytes is the size of a user id before hex encoding.
const IDBytes = 8

// NewID returns a fresh random user id (16 hex characters). Two users
// share one with probability 2^-64 per pair: far below any other failure.
func NewID() string {
	b := make([]byte, IDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// User is the record stored at users/<name>.
type User struct {
	Name string `json:"name"`
	// ID is given once, when the user is created, and never changes: it is
	// the namespace of the user's keys, so a name removed and added again
	// gets a new id and starts empty. Records written before ids existed
	// have none; their namespace stays the name (see Namespace), so the
	// keys stored under it stay readable.
	ID            string   `json:"id,omitempty"`
	Hash          []byte   `json:"hash"` // bcrypt
	Roles         []string `json:"roles,omitempty"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
}

// Namespace is the namespace of the user's keys: the id, or the name for a
// record without one.
func (u User) Namespace() string { return namespace(u.Name, u.ID) }

func namespace(name, id string) string {
	if id == "" {
		return name
	}
	return id
}

// NewUser hashes password with cost (bcrypt.DefaultCost in production).
func NewUser(name, password string, cost int) (User, error) {
	if err := CheckUser(name); err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return User{}, fmt.Errorf("auth: hash password: %w", err)
	}
	return User{Name: name, ID: NewID(), Hash: h, CreatedUnixMs: time.Now().UnixMilli()}, nil
}

// Marshal encodes the record.
func (u User) Marshal() []byte { return marshal(u) }

// UnmarshalUser decodes and checks a record.
func UnmarshalUser(b []byte) (User, error) {
	u, err := unmarshal[User](b, "user record")
	if err != nil {
		return User{}, err
	}
	if _, err := bcrypt.Cost(u.Hash); err != nil {
		return User{}, fmt.Errorf("auth: user %s: %w", u.Name, err)
	}
	return u, nil
}

// checkNameID accepts a valid user name and an id made by NewID, or none
// (a record older than ids).
func checkNameID(name, id string) error {
	if err := CheckUser(name); err != nil {
		return err
	}
	if id != "" && !idRE.MatchString(id) {
		return fmt.Errorf("%w, got %q", ErrBadID, id)
	}
	return nil
}

// record is what the user and removal records have in common: a name and
// an id.
type record interface {
	User | Removal
	nameID() (name, id string)
}

func (u User) nameID() (string, string)    { return u.Name, u.ID }
func (r Removal) nameID() (string, string) { return r.Name, r.ID }

func marshal[T record](r T) []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return b
}

// unmarshal decodes a record of kind what and checks its name and id.
func unmarshal[T record](b []byte, what string) (T, error) {
	var r T
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("auth: %s: %w", what, err)
	}
	if err := checkNameID(r.nameID()); err != nil {
		var zero T
		return zero, err
	}
	return r, nil
}

// Removal records a removed user's namespace: as a tombstone
// (etcdkeys.Tombstone, keyed by namespace) whose keys every head deletes,
// or as a kept record (etcdkeys.KeptUser, keyed by name) whose keys and
// id stay for the next user of that name.
type Removal struct {
	Name          string `json:"name"`
	ID            string `json:"id,omitempty"` // empty for a record older than ids
	RemovedUnixMs int64  `json:"removed_unix_ms"`
}

// NewRemoval records u's removal now.
func NewRemoval(u User) Removal {
	return Removal{Name: u.Name, ID: u.ID, RemovedUnixMs: time.Now().UnixMilli()}
}

// Namespace is the removed user's namespace, as User.Namespace.
func (r Removal) Namespace() string { return namespace(r.Name, r.ID) }

// Marshal encodes the record.
func (r Removal) Marshal() []byte { return marshal(r) }

// UnmarshalRemoval decodes and checks a record.
func UnmarshalRemoval(b []byte) (Removal, error) { return unmarshal[Removal](b, "removal record") }

// KeyBytes is the size of the cluster's token key.
const KeyBytes = 32

// Config is the cluster's authentication record in etcd (etcdkeys.Auth):
// the token key, readable only by cluster members, and the token lifetime.
type Config struct {
	Key        []byte `json:"key"`
	TokenTTLMs int64  `json:"token_ttl_ms"`
}

// NewConfig returns a config with a fresh random key.
func NewConfig(ttl time.Duration) Config {
	k := make([]byte, KeyBytes)
	_, _ = rand.Read(k) // crypto/rand.Read never fails
	return Config{Key: k, TokenTTLMs: ttl.Milliseconds()}
}

// Marshal encodes the config.
func (c Config) Marshal() []byte {
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return b
}

// UnmarshalConfig decodes and checks a config.
func UnmarshalConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("auth: config: %w", err)
	}
	if len(c.Key) != KeyBytes || c.TokenTTLMs < 1000 {
		return Config{}, fmt.Errorf("auth: config: key of %d bytes or token ttl %d ms", len(c.Key), c.TokenTTLMs)
	}
	return c, nil
}
