package storage

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		p       int
		ns, key string
	}{
		{"empty ns and key", 0, "", ""},
		{"plain", 1, "alice", "k"},
		{"last partition", MaxPartitions - 1, "ns", "key"},
		{"nul in key", 7, "x", "a\x00b"},
		{"high bytes", 300, "\xff\xfe", "\xff\xff\x00\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := EncodeKey(tt.p, []byte(tt.ns), []byte(tt.key))
			require.Len(t, k, 3+len(tt.ns)+len(tt.key))
			p, ns, key, err := DecodeKey(k)
			require.NoError(t, err)
			require.Equal(t, tt.p, p)
			require.Equal(t, tt.ns, string(ns))
			require.Equal(t, tt.key, string(key))
			require.Equal(t, k, AppendKey(nil, tt.p, []byte(tt.ns), []byte(tt.key)))
		})
	}
}

func TestKeyOrderingAndSeparation(t *testing.T) {
	nss := []string{"", "a", "ab", "x", "x\x01", "xa", "\xff"}
	keys := []string{"", "\x00", "a", "a\x00b", "b", "\xff\xff"}
	type pair struct{ ns, key string }
	var enc [][]byte
	owner := map[string]pair{}
	for _, p := range []int{0, 1, 255, 256, MaxPartitions - 1} {
		for _, ns := range nss {
			for _, key := range keys {
				k := EncodeKey(p, []byte(ns), []byte(key))
				prev, dup := owner[string(k)]
				require.False(t, dup, "%q/%q collides with %q/%q", ns, key, prev.ns, prev.key)
				owner[string(k)] = pair{ns, key}
				enc = append(enc, k)
				lo, hi := partitionBounds(p)
				require.True(t, bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0, "key outside its partition range")
				slo, _ := stateBounds(0)
				require.Negative(t, bytes.Compare(k, slo), "data key sorts into the state range")
			}
		}
	}
	slices.SortFunc(enc, bytes.Compare)
	// In key order, each partition and each (partition, ns) forms one contiguous run.
	seen := map[[2]any]bool{}
	var last [2]any
	for i, k := range enc {
		p, ns, _, err := DecodeKey(k)
		require.NoError(t, err)
		cur := [2]any{p, string(ns)}
		if i > 0 && cur != last {
			require.False(t, seen[cur], "run of %v is not contiguous", cur)
		}
		seen[cur] = true
		last = cur
	}
}

func TestEncodeKeyPanicsOnBadInput(t *testing.T) {
	tests := []struct {
		name string
		p    int
		ns   string
	}{
		{"negative partition", -1, "a"},
		{"partition too large", MaxPartitions, "a"},
		{"state partition", 0xFFFF, "a"},
		{"nul in namespace", 0, "a\x00b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Panics(t, func() { EncodeKey(tt.p, []byte(tt.ns), []byte("k")) })
		})
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		k    []byte
	}{
		{"nil", nil},
		{"too short", []byte{0, 1}},
		{"no separator", []byte{0, 1, 'a', 'b'}},
		{"state key", stateKey(3, stateApplied)},
		{"partition too large", []byte{0x80, 0, 0, 'k'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := DecodeKey(tt.k)
			require.ErrorIs(t, err, ErrBadKey)
		})
	}
}

func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte{0, 1, 'n', 0, 'k'}, uint16(1), []byte("ns"), []byte("k"))
	f.Add([]byte{0xff, 0xff, 0, 1, 1}, uint16(32767), []byte(""), []byte("a\x00b"))
	f.Add([]byte{}, uint16(0), []byte("\x00"), []byte{})
	f.Fuzz(func(t *testing.T, raw []byte, p uint16, ns, key []byte) {
		// Arbitrary bytes: never panic; what decodes re-encodes to the input.
		if dp, dns, dkey, err := DecodeKey(raw); err == nil {
			if !bytes.Equal(raw, EncodeKey(dp, dns, dkey)) {
				t.Fatalf("re-encode of %x differs", raw)
			}
		}
		// Valid fields: decode(encode(x)) == x.
		part := int(p) % MaxPartitions
		if ValidateNamespace(ns) != nil {
			return
		}
		gp, gns, gkey, err := DecodeKey(EncodeKey(part, ns, key))
		if err != nil || gp != part || !bytes.Equal(gns, ns) || !bytes.Equal(gkey, key) {
			t.Fatalf("round trip of (%d, %x, %x) = (%d, %x, %x, %v)", part, ns, key, gp, gns, gkey, err)
		}
	})
}
