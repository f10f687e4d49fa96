package scancursor

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScanCursorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Cursor
	}{
		{name: "start", c: Cursor{}},
		{name: "partition start", c: Cursor{Part: 7}},
		{name: "key in partition 0", c: Cursor{Part: 0, After: []byte("k")}},
		{name: "binary key", c: Cursor{Part: 1023, After: []byte{0, 0xff, '\n', 0}}},
		{name: "last partition", c: Cursor{Part: MaxPartitions - 1, After: []byte(strings.Repeat("x", MaxKeyBytes))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Encode(tc.c)
			got, err := Decode(s)
			require.NoError(t, err)
			require.Equal(t, tc.c, got)
			require.Equal(t, s, Encode(got))
		})
	}
	require.Empty(t, Encode(Cursor{}), "the start is the empty cursor")
}

func TestScanCursorMalformed(t *testing.T) {
	long := Encode(Cursor{Part: 1, After: []byte(strings.Repeat("x", MaxKeyBytes+1))})
	for _, tc := range []struct{ name, in string }{
		{name: "not base64", in: "!!!"},
		{name: "padded base64", in: "AQE="},
		{name: "unknown version", in: "AgE"},
		{name: "empty after decoding", in: "AA"[:1]},
		{name: "no partition", in: "AQ"},
		{name: "partition too large", in: Encode(Cursor{Part: MaxPartitions, After: []byte("k")})},
		{name: "non-minimal partition", in: "AYEA"},
		{name: "key too long", in: long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrBadCursor), "%v", err)
		})
	}
}

// FuzzScanCursorDecode: any string decodes to a cursor that re-encodes to
// itself, or fails with ErrBadCursor; nothing panics.
func FuzzScanCursorDecode(f *testing.F) {
	for _, s := range []string{"", "AQE", Encode(Cursor{Part: 3, After: []byte("abc")}), "AYEA", "!!", "AgE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("Decode(%q): %v is not ErrBadCursor", s, err)
			}
			return
		}
		if c.Part < 0 || c.Part >= MaxPartitions || len(c.After) > MaxKeyBytes {
			t.Fatalf("Decode(%q) = %+v out of bounds", s, c)
		}
		if got := Encode(c); got != s && !(s != "" && c.Part == 0 && len(c.After) == 0) {
			t.Fatalf("Encode(Decode(%q)) = %q", s, got)
		}
	})
}
