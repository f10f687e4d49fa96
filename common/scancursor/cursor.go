// Package scancursor encodes the opaque cursor of a scan (DESIGN §7): the
// partition the scan is in and the last key it returned there. It holds no
// server state, so a scan resumes at whichever server serves the partition
// later (after a reconnect, a failover or a move). Pure and safe for
// concurrent use.
package scancursor

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// version is the first byte of every encoded cursor, so a later format can
// tell the cursors of this one apart.
const version = 1

// MaxKeyBytes bounds the key a cursor may hold; the cluster's own key
// limit (1 KiB by default, at most 64 KiB) is checked by the server.
const MaxKeyBytes = 64 << 10

// MaxPartitions bounds the partition a cursor may name (the storage
// layer's bound; the cluster's own count is checked by the server).
const MaxPartitions = 1 << 15

// ErrBadCursor rejects a cursor this package did not produce.
var ErrBadCursor = errors.New("scan cursor is malformed (pass back a cursor a scan returned, or none to start)")

// Cursor is a position in a scan: after key After of partition Part, or at
// the start of Part when After is empty. The zero Cursor is the start.
type Cursor struct {
	Part  int
	After []byte
}

// Encode returns c's opaque form: base64url of version | uvarint Part |
// After. The start (the zero Cursor) encodes as "".
func Encode(c Cursor) string {
	if c.Part == 0 && len(c.After) == 0 {
		return ""
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(c.After))
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(c.Part))
	b = append(b, c.After...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode parses a cursor Encode produced; "" is the start. Anything else
// fails with ErrBadCursor.
func Decode(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if len(s) > base64.RawURLEncoding.EncodedLen(1+binary.MaxVarintLen64+MaxKeyBytes) {
		return Cursor{}, fmt.Errorf("%w: %d characters", ErrBadCursor, len(s))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	// The decoder skips line breaks; only the one canonical form is ours.
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != s {
		return Cursor{}, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	if len(b) == 0 || b[0] != version {
		return Cursor{}, fmt.Errorf("%w: unknown version", ErrBadCursor)
	}
	p, n := binary.Uvarint(b[1:])
	if n <= 0 || p >= MaxPartitions || n != uvarintLen(p) {
		return Cursor{}, fmt.Errorf("%w: bad partition", ErrBadCursor)
	}
	after := b[1+n:]
	if len(after) > MaxKeyBytes {
		return Cursor{}, fmt.Errorf("%w: key of %d bytes", ErrBadCursor, len(after))
	}
	c := Cursor{Part: int(p)}
	if len(after) > 0 {
		c.After = after
	}
	return c, nil
}

// uvarintLen is the length of the shortest encoding of v: a longer one
// (padded with 0x80 bytes) is refused so every cursor has one form.
func uvarintLen(v uint64) int {
	return len(binary.AppendUvarint(nil, v))
}
