package auth

import (
	"crypto/rand"
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

// User is the record stored at users/<name>.
type User struct {
	Name          string   `json:"name"`
	Hash          []byte   `json:"hash"` // bcrypt
	Roles         []string `json:"roles,omitempty"`
	CreatedUnixMs int64    `json:"created_unix_ms"`
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
	return User{Name: name, Hash: h, CreatedUnixMs: time.Now().UnixMilli()}, nil
}

// Marshal encodes the record.
func (u User) Marshal() []byte {
	b, _ := json.Marshal(u) // cannot fail: plain fields
	return b
}

// UnmarshalUser decodes and checks a record.
func UnmarshalUser(b []byte) (User, error) {
	var u User
	if err := json.Unmarshal(b, &u); err != nil {
		return User{}, fmt.Errorf("auth: user record: %w", err)
	}
	if err := CheckUser(u.Name); err != nil {
		return User{}, err
	}
	if _, err := bcrypt.Cost(u.Hash); err != nil {
		return User{}, fmt.Errorf("auth: user %s: %w", u.Name, err)
	}
	return u, nil
}

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
