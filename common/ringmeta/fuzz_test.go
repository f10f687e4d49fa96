package ringmeta

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"math/bits"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzUnmarshal(f *testing.F) {
	for _, r := range []*Ring{
		testRing(),
		func() *Ring { r := testRing(); r.Chains = nil; return r }(),
		{Partitions: 1, Replicas: 1, Limits: Limits{MaxKeyBytes: 1}, Servers: []Server{}},
	} {
		b, err := r.Marshal()
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{
		"", "null", "{}", "[]", `"ring"`, "{", "\xff\xfe",
		`{"partitions":2,"replicas":1,"limits":{"max_key_bytes":1},"servers":[{"id":"a"}],"chains":[{"m":["a"]},{"m":[]}]}`,
		`{"partitions":2,"replicas":1,"limits":{"max_key_bytes":1},"servers":[{"id":"a"},{"id":"b"}],"chains":[{"m":["a"],"l":"b"},{"m":["b","a"]}]}`,
		`{"partitions":1,"replicas":1,"limits":{"max_key_bytes":1},"servers":[{"id":"\u00ff\ud800"}],"chains":[{"m":["\u00ff\ud800"]}]}`,
		`{"partitions":1,"replicas":1,"limits":{"max_key_bytes":1},"servers":[{"id":"a"},{"id":"a"}]}`,
		`{"partitions":32768,"replicas":3,"limits":{"max_key_bytes":1,"max_value_bytes":0}}`,
		`{"Partitions":1,"REPLICAS":1,"limits":{"max_key_bytes":1},"epoch":18446744073709551615}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, r)
			return
		}
		require.NoError(t, r.Validate())

		enc, err := r.Marshal()
		require.NoError(t, err)
		r2, err := Unmarshal(enc)
		require.NoError(t, err, "re-decoding %s", enc)
		require.Equal(t, r, r2)
		enc2, err := r2.Marshal()
		require.NoError(t, err)
		require.Equal(t, string(enc), string(enc2), "encoding is not stable")

		c := r.Clone()
		require.Equal(t, r, c)

		checkKeyRange(t, r, r.KeyRange())
		checkKeyRange(t, r, r.KeyRangeRead())
	})
}

// checkKeyRange checks the parts of a keyrange string that do not depend on
// server addresses (which may hold ',' or ';' in a fuzzed ring).
func checkKeyRange(t *testing.T, r *Ring, s string) {
	t.Helper()
	if len(r.Chains) == 0 {
		require.Empty(t, s)
		return
	}
	if s == "" {
		return // every chain empty
	}
	require.True(t, strings.HasSuffix(s, ";"), "%q", s)
	for len(s) > 0 {
		require.GreaterOrEqual(t, len(s), 66, "%q", s)
		start, err := hex.DecodeString(s[:32])
		require.NoError(t, err)
		require.Equal(t, byte(','), s[32])
		end, err := hex.DecodeString(s[33:65])
		require.NoError(t, err)
		require.Equal(t, byte(','), s[65])
		require.LessOrEqual(t, bytes.Compare(start, end), 0)
		// Skip the address: it ends at the first ";" followed by another
		// entry's hex start, or at the end.
		rest := s[66:]
		next := len(rest)
		for i := 0; i < len(rest); i++ {
			if rest[i] == ';' && (i == len(rest)-1 || isEntryStart(rest[i+1:])) {
				next = i + 1
				break
			}
		}
		s = rest[next:]
	}
}

func isEntryStart(s string) bool {
	if len(s) < 66 || s[32] != ',' || s[65] != ',' {
		return false
	}
	_, err1 := hex.DecodeString(s[:32])
	_, err2 := hex.DecodeString(s[33:65])
	return err1 == nil && err2 == nil
}

func FuzzKeyHashPartition(f *testing.F) {
	f.Add([]byte(""), []byte(""), uint8(0))
	f.Add([]byte("a"), []byte("bc"), uint8(1))
	f.Add([]byte("alice"), []byte("key"), uint8(10))
	f.Add([]byte{0}, []byte{0xff, 0}, uint8(15))
	f.Fuzz(func(t *testing.T, ns, key []byte, exp uint8) {
		p := 1 << (exp % 16) // 1..MaxPartitions
		h := KeyHash(ns, key)
		i := Partition(h, p)
		require.GreaterOrEqual(t, i, 0)
		require.Less(t, i, p)

		// Independent definition: the top log2(p) bits of the 128-bit hash.
		want := new(big.Int).Rsh(new(big.Int).SetBytes(h[:]), uint(128-bits.TrailingZeros(uint(p))))
		require.Equal(t, want.Int64(), int64(i))

		s, e := Range(i, p)
		require.LessOrEqual(t, bytes.Compare(s[:], h[:]), 0, "hash %x before start %x of partition %d/%d", h, s, i, p)
		require.LessOrEqual(t, bytes.Compare(h[:], e[:]), 0, "hash %x after end %x of partition %d/%d", h, e, i, p)

		// Namespaces stay apart: moving the first key byte into the
		// namespace changes the hash. (Not for a 0x00 byte: ns "a" key
		// "\x00b" and ns "a\x00" key "b" hash alike, so namespaces must
		// never contain 0x00.)
		if len(key) > 0 && key[0] != 0 {
			require.NotEqual(t, h, KeyHash(append(bytes.Clone(ns), key[0]), key[1:]))
		}
	})
}
