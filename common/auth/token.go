package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Claims are what a token says.
type Claims struct {
	User string
	// Rev is the etcd mod revision of the user's record at login: a newer
	// record (password changed, user removed and added again) voids it.
	Rev     int64
	Expires time.Time
}

// Token layout: "v1." + base64url(payload) + "." + base64url(HMAC-SHA256),
// the MAC over everything before the last dot; payload is expiry (unix ms,
// 8 bytes big-endian) | rev (8 bytes) | user name.
const (
	tokenPrefix = "v1."
	// MaxTokenBytes bounds what Verify parses: any real token is shorter.
	MaxTokenBytes = 256
	fixedPayload  = 16
)

// Strict: non-canonical encodings would give one token several spellings.
var b64 = base64.RawURLEncoding.Strict()

// Sign returns the token for c under key.
func Sign(key []byte, c Claims) string {
	payload := make([]byte, fixedPayload, fixedPayload+len(c.User))
	binary.BigEndian.PutUint64(payload[0:8], uint64(c.Expires.UnixMilli()))
	binary.BigEndian.PutUint64(payload[8:16], uint64(c.Rev))
	payload = append(payload, c.User...)
	body := tokenPrefix + b64.EncodeToString(payload)
	return body + "." + b64.EncodeToString(mac(key, body))
}

// Parse checks a token's MAC and syntax and returns its claims; it does not
// look at the expiry.
func Parse(key []byte, token string) (Claims, error) {
	if len(token) > MaxTokenBytes || !strings.HasPrefix(token, tokenPrefix) || !tokenChars(token) {
		return Claims{}, fmt.Errorf("%w: not an ecskv token", ErrInvalidToken)
	}
	i := strings.LastIndexByte(token, '.')
	if i < len(tokenPrefix) {
		return Claims{}, fmt.Errorf("%w: no signature", ErrInvalidToken)
	}
	body, sig := token[:i], token[i+1:]
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, body)) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	payload, err := b64.DecodeString(body[len(tokenPrefix):])
	if err != nil || len(payload) <= fixedPayload {
		return Claims{}, fmt.Errorf("%w: bad payload", ErrInvalidToken)
	}
	c := Claims{
		Expires: time.UnixMilli(int64(binary.BigEndian.Uint64(payload[0:8]))),
		Rev:     int64(binary.BigEndian.Uint64(payload[8:16])),
		User:    string(payload[fixedPayload:]),
	}
	if CheckUser(c.User) != nil || c.Rev <= 0 {
		return Claims{}, fmt.Errorf("%w: bad claims", ErrInvalidToken)
	}
	return c, nil
}

func mac(key []byte, body string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(body))
	return h.Sum(nil)
}

// tokenChars reports whether s has only base64url letters and dots: the
// decoder would skip newlines, giving one token several spellings.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
