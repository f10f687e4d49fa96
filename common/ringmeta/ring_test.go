package ringmeta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hashOf builds a Hash whose leading bytes are prefix and the rest zero.
func hashOf(prefix ...byte) Hash {
	var h Hash
	copy(h[:], prefix)
	return h
}

func allOnes() Hash {
	var h Hash
	for i := range h {
		h[i] = 0xff
	}
	return h
}

func hashInt(h Hash) *big.Int { return new(big.Int).SetBytes(h[:]) }

// testRing is a valid ring with P=4, R=2 and two servers. Partition 2 has a
// single member and a learner being caught up.
func testRing() *Ring {
	return &Ring{
		Epoch:      7,
		Partitions: 4,
		Replicas:   2,
		Limits:     Limits{MaxKeyBytes: 1024, MaxValueBytes: 1 << 20},
		Servers: []Server{
			{ID: "s1", Addr: "127.0.0.1:5001", Zone: "z1", State: StateActive, Metrics: "127.0.0.1:6001"},
			{ID: "s2", Addr: "127.0.0.1:5002", State: StateDown},
		},
		Chains: []Chain{
			{Members: []string{"s1", "s2"}, Version: 1},
			{Members: []string{"s1", "s2"}, Version: 2},
			{Members: []string{"s2"}, Version: 3, Learner: "s1"},
			{Members: []string{"s1", "s2"}, Version: 4},
		},
	}
}

func TestKeyHash(t *testing.T) {
	tests := []struct {
		name    string
		ns, key string
		want    string
	}{
		{name: "empty namespace", ns: "", key: "a", want: "760f753576f2955b0074758acb4d5fa6"},
		{name: "namespace a key bc", ns: "a", key: "bc", want: "a5f5d1ebd362d6639389a7e1fede534d"},
		{name: "namespace ab key c", ns: "ab", key: "c", want: "cf1aa1426d75f0e4c1a49da3b28808ef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := KeyHash([]byte(tt.ns), []byte(tt.key))
			require.Equal(t, tt.want, hex.EncodeToString(h[:]))
		})
	}
}

func TestKeyHashSeparatesNamespaces(t *testing.T) {
	tests := []struct {
		name      string
		ns1, key1 string
		ns2, key2 string
	}{
		{name: "a+bc vs ab+c", ns1: "a", key1: "bc", ns2: "ab", key2: "c"},
		{name: "empty ns vs ns", ns1: "", key1: "ab", ns2: "ab", key2: ""},
		{name: "same key other user", ns1: "alice", key1: "k", ns2: "bob", key2: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t,
				KeyHash([]byte(tt.ns1), []byte(tt.key1)),
				KeyHash([]byte(tt.ns2), []byte(tt.key2)))
		})
	}
}

func TestPartition(t *testing.T) {
	tests := []struct {
		name string
		h    Hash
		p    int
		want int
	}{
		{name: "P=1 zero hash", h: hashOf(), p: 1, want: 0},
		{name: "P=1 all ones", h: allOnes(), p: 1, want: 0},
		{name: "P=1 mid", h: hashOf(0xab, 0xcd), p: 1, want: 0},
		{name: "P=2 low half", h: hashOf(0x7f, 0xff), p: 2, want: 0},
		{name: "P=2 high half", h: hashOf(0x80), p: 2, want: 1},
		{name: "P=4 third quarter", h: hashOf(0xbf, 0xff), p: 4, want: 2},
		{name: "P=1024 zero", h: hashOf(), p: 1024, want: 0},
		{name: "P=1024 top 10 bits of abcd", h: hashOf(0xab, 0xcd), p: 1024, want: 0x2af},
		{name: "P=1024 bit 10 set", h: hashOf(0x00, 0x40), p: 1024, want: 1},
		{name: "P=1024 bit 11 ignored", h: hashOf(0x00, 0x3f, 0xff), p: 1024, want: 0},
		{name: "P=1024 all ones", h: allOnes(), p: 1024, want: 1023},
		{name: "P=32768 top 15 bits of abcd", h: hashOf(0xab, 0xcd), p: 32768, want: 21990},
		{name: "P=32768 all ones", h: allOnes(), p: MaxPartitions, want: MaxPartitions - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Partition(tt.h, tt.p))
		})
	}
}

func TestRangeTilesHashSpace(t *testing.T) {
	one := big.NewInt(1)
	last := hashInt(allOnes())
	for _, p := range []int{1, 2, 1024, MaxPartitions} {
		t.Run("P="+strconv.Itoa(p), func(t *testing.T) {
			var prevEnd *big.Int
			for i := range p {
				s, e := Range(i, p)
				si, ei := hashInt(s), hashInt(e)
				require.LessOrEqual(t, si.Cmp(ei), 0, "partition %d: start > end", i)
				if i == 0 {
					require.Zero(t, si.Sign(), "first start must be 0")
				} else {
					require.Zero(t, si.Cmp(new(big.Int).Add(prevEnd, one)),
						"partition %d starts at %x, previous ended at %x", i, si, prevEnd)
				}
				// Every partition is one p-th of the space.
				require.Zero(t, new(big.Int).Sub(ei, si).Cmp(new(big.Int).Sub(new(big.Int).Rsh(new(big.Int).Add(last, one), uint(log2(p))), one)))
				// The bounds belong to the partition they delimit.
				require.Equal(t, i, Partition(s, p))
				require.Equal(t, i, Partition(e, p))
				prevEnd = ei
			}
			require.Zero(t, prevEnd.Cmp(last), "last end must be ff..ff")
		})
	}
}

func TestKeyHashFallsInsideItsRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []int{1, 2, 4, 1024, MaxPartitions} {
		t.Run("P="+strconv.Itoa(p), func(t *testing.T) {
			for range 5000 {
				ns := randBytes(rng, 8)
				key := randBytes(rng, 64)
				h := KeyHash(ns, key)
				i := Partition(h, p)
				require.GreaterOrEqual(t, i, 0)
				require.Less(t, i, p)
				s, e := Range(i, p)
				require.True(t, bytes.Compare(s[:], h[:]) <= 0 && bytes.Compare(h[:], e[:]) <= 0,
					"hash %x outside partition %d [%x, %x]", h, i, s, e)
			}
		})
	}
}

func TestPartitionOf(t *testing.T) {
	r := testRing()
	ns, key := []byte("alice"), []byte("k1")
	require.Equal(t, Partition(KeyHash(ns, key), 4), r.PartitionOf(ns, key))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(r *Ring)
		wantErr error // nil: the ring is valid
		msg     string
	}{
		{name: "valid", mutate: func(*Ring) {}},
		{name: "valid without layout", mutate: func(r *Ring) { r.Chains = nil }},
		{name: "valid P=1", mutate: func(r *Ring) { r.Partitions = 1; r.Chains = r.Chains[:1] }},
		{name: "valid P=max without layout", mutate: func(r *Ring) { r.Partitions = MaxPartitions; r.Chains = nil }},
		{name: "valid empty values allowed", mutate: func(r *Ring) { r.Limits.MaxValueBytes = 0 }},
		{name: "valid no servers no chains", mutate: func(r *Ring) { r.Servers = nil; r.Chains = nil }},
		{name: "P zero", mutate: func(r *Ring) { r.Partitions = 0 }, wantErr: ErrInvalid, msg: "partitions 0"},
		{name: "P negative", mutate: func(r *Ring) { r.Partitions = -4 }, wantErr: ErrInvalid, msg: "partitions"},
		{name: "P not power of two", mutate: func(r *Ring) { r.Partitions = 3; r.Chains = r.Chains[:3] }, wantErr: ErrInvalid, msg: "partitions 3"},
		{name: "P 1000", mutate: func(r *Ring) { r.Partitions = 1000; r.Chains = nil }, wantErr: ErrInvalid, msg: "partitions 1000"},
		{name: "P above max", mutate: func(r *Ring) { r.Partitions = 2 * MaxPartitions; r.Chains = nil }, wantErr: ErrInvalid, msg: "partitions 65536"},
		{name: "R zero", mutate: func(r *Ring) { r.Replicas = 0 }, wantErr: ErrInvalid, msg: "replicas 0"},
		{name: "R negative", mutate: func(r *Ring) { r.Replicas = -1 }, wantErr: ErrInvalid, msg: "replicas"},
		{name: "max key bytes zero", mutate: func(r *Ring) { r.Limits.MaxKeyBytes = 0 }, wantErr: ErrInvalid, msg: "limits"},
		{name: "max value bytes negative", mutate: func(r *Ring) { r.Limits.MaxValueBytes = -1 }, wantErr: ErrInvalid, msg: "limits"},
		{name: "too few chains", mutate: func(r *Ring) { r.Chains = r.Chains[:3] }, wantErr: ErrInvalid, msg: "3 chains for 4 partitions"},
		{name: "too many chains", mutate: func(r *Ring) { r.Chains = append(r.Chains, Chain{}) }, wantErr: ErrInvalid, msg: "5 chains"},
		{name: "duplicate server id", mutate: func(r *Ring) { r.Servers[1].ID = "s1" }, wantErr: ErrInvalid, msg: `"s1"`},
		{name: "empty server id", mutate: func(r *Ring) { r.Servers = append(r.Servers, Server{Addr: "x:1"}) }, wantErr: ErrInvalid, msg: "empty"},
		{name: "chain names unknown server", mutate: func(r *Ring) { r.Chains[1].Members[1] = "s9" }, wantErr: ErrUnknownServer, msg: `partition 1`},
		{name: "learner unknown", mutate: func(r *Ring) { r.Chains[3].Learner = "s9" }, wantErr: ErrUnknownServer, msg: `"s9"`},
		{name: "server twice in chain", mutate: func(r *Ring) { r.Chains[0].Members = []string{"s1", "s2", "s1"} }, wantErr: ErrInvalid, msg: `"s1" twice`},
		{name: "learner is a member", mutate: func(r *Ring) { r.Chains[0].Learner = "s2" }, wantErr: ErrInvalid, msg: `"s2" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRing()
			tt.mutate(r)
			err := r.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorIs(t, err, tt.wantErr)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestValidateDoesNotMutateChain(t *testing.T) {
	r := testRing()
	// A members slice with spare capacity must not get the learner appended
	// into its backing array.
	members := make([]string, 1, 4)
	members[0] = "s1"
	r.Chains[0] = Chain{Members: members, Learner: "s2"}
	require.NoError(t, r.Validate())
	require.Equal(t, []string{"s1"}, r.Chains[0].Members)
	require.Equal(t, "", members[:2][1])
}

func TestMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ring *Ring
	}{
		{name: "full", ring: testRing()},
		{name: "no layout", ring: func() *Ring { r := testRing(); r.Chains = nil; return r }()},
		{name: "empty server list", ring: &Ring{Partitions: 1, Replicas: 1, Limits: Limits{MaxKeyBytes: 1}, Servers: []Server{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.ring.Marshal()
			require.NoError(t, err)
			got, err := Unmarshal(b)
			require.NoError(t, err)
			require.Equal(t, tt.ring, got)
		})
	}
}

// TestMarshalFormat pins the JSON stored in etcd: other readers depend on it.
func TestMarshalFormat(t *testing.T) {
	r := &Ring{
		Epoch: 3, Partitions: 1, Replicas: 1,
		Limits:  Limits{MaxKeyBytes: 10, MaxValueBytes: 20},
		Servers: []Server{{ID: "a", Addr: "h:1", State: StateActive}},
		Chains:  []Chain{{Members: []string{"a"}, Version: 2}},
	}
	b, err := r.Marshal()
	require.NoError(t, err)
	require.JSONEq(t, `{"epoch":3,"partitions":1,"replicas":1,
		"limits":{"max_key_bytes":10,"max_value_bytes":20},
		"servers":[{"id":"a","addr":"h:1","state":"active"}],
		"chains":[{"m":["a"],"v":2}]}`, string(b))
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{name: "empty input", in: "", msg: "invalid"},
		{name: "not json", in: "ring", msg: "invalid"},
		{name: "wrong type", in: `{"partitions":"four"}`, msg: "partitions"},
		{name: "null", in: "null", msg: "partitions 0"},
		{name: "empty object", in: "{}", msg: "partitions 0"},
		{name: "invalid ring", in: `{"partitions":4,"replicas":1,"limits":{"max_key_bytes":1},"chains":[{"m":["x"]}]}`, msg: "1 chains for 4"},
		{name: "unknown server", in: `{"partitions":1,"replicas":1,"limits":{"max_key_bytes":1},"chains":[{"m":["x"]}]}`, msg: `unknown server "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Unmarshal([]byte(tt.in))
			require.Nil(t, r)
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := testRing()
	c := orig.Clone()
	require.Equal(t, orig, c)

	c.Epoch++
	c.Partitions = 8
	c.Servers[0].Addr = "10.0.0.1:1"
	c.Servers = append(c.Servers, Server{ID: "s3"})
	c.Chains[0].Members[0] = "s3"
	c.Chains[1].Members = append(c.Chains[1].Members, "s3")
	c.Chains[2].Learner = ""
	c.Chains[3].Version = 99

	require.Equal(t, testRing(), orig, "mutating the clone changed the original")
}

func TestCloneKeepsNilSlices(t *testing.T) {
	r := &Ring{Partitions: 1, Replicas: 1, Limits: Limits{MaxKeyBytes: 1}}
	c := r.Clone()
	require.Equal(t, r, c)
	a, err := r.Marshal()
	require.NoError(t, err)
	b, err := c.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))
}

func TestKeyRange(t *testing.T) {
	const (
		q0s = "00000000000000000000000000000000"
		q0e = "3fffffffffffffffffffffffffffffff"
		q1s = "40000000000000000000000000000000"
		q1e = "7fffffffffffffffffffffffffffffff"
		q2s = "80000000000000000000000000000000"
		q2e = "bfffffffffffffffffffffffffffffff"
		q3s = "c0000000000000000000000000000000"
		q3e = "ffffffffffffffffffffffffffffffff"
		a1  = "127.0.0.1:5001"
		a2  = "127.0.0.1:5002"
	)
	entry := func(s, e, addr string) string { return s + "," + e + "," + addr + ";" }
	tests := []struct {
		name  string
		ring  func() *Ring
		write string
		read  string
	}{
		{
			// Heads: s1 s1 s2 s1. Reads: s1 in 0,1,3 (only a learner in 2), s2 everywhere.
			name:  "P=4 two servers",
			ring:  testRing,
			write: entry(q0s, q1e, a1) + entry(q2s, q2e, a2) + entry(q3s, q3e, a1),
			read:  entry(q0s, q1e, a1) + entry(q0s, q3e, a2) + entry(q3s, q3e, a1),
		},
		{
			name: "one server heads everything",
			ring: func() *Ring {
				r := testRing()
				for i := range r.Chains {
					r.Chains[i] = Chain{Members: []string{"s2", "s1"}}
				}
				return r
			},
			write: entry(q0s, q3e, a2),
			read:  entry(q0s, q3e, a1) + entry(q0s, q3e, a2),
		},
		{
			name: "alternating heads do not merge",
			ring: func() *Ring {
				r := testRing()
				r.Chains = []Chain{
					{Members: []string{"s1"}}, {Members: []string{"s2"}},
					{Members: []string{"s1"}}, {Members: []string{"s2"}},
				}
				return r
			},
			write: entry(q0s, q0e, a1) + entry(q1s, q1e, a2) + entry(q2s, q2e, a1) + entry(q3s, q3e, a2),
			read:  entry(q0s, q0e, a1) + entry(q1s, q1e, a2) + entry(q2s, q2e, a1) + entry(q3s, q3e, a2),
		},
		{
			name:  "P=1",
			ring:  func() *Ring { r := testRing(); r.Partitions = 1; r.Chains = r.Chains[:1]; return r },
			write: entry(q0s, q3e, a1),
			read:  entry(q0s, q3e, a1) + entry(q0s, q3e, a2),
		},
		{
			name:  "no layout",
			ring:  func() *Ring { r := testRing(); r.Chains = nil; return r },
			write: "",
			read:  "",
		},
		{
			// A partition without members has no head: it is left out rather
			// than listed with an empty address.
			name: "empty chain is skipped",
			ring: func() *Ring {
				r := testRing()
				r.Chains[1] = Chain{}
				r.Chains[2] = Chain{Learner: "s2"}
				return r
			},
			write: entry(q0s, q0e, a1) + entry(q3s, q3e, a1),
			read:  entry(q0s, q0e, a1) + entry(q0s, q0e, a2) + entry(q3s, q3e, a1) + entry(q3s, q3e, a2),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.ring()
			require.NoError(t, r.Validate())
			require.Equal(t, tt.write, r.KeyRange())
			require.Equal(t, tt.read, r.KeyRangeRead())
		})
	}
}

func TestKeyRangeUnknownServerFallsBackToID(t *testing.T) {
	// Not a valid ring, but KeyRange must still say something useful.
	r := &Ring{Partitions: 1, Chains: []Chain{{Members: []string{"ghost"}}}}
	require.Equal(t, strings.Repeat("0", 32)+","+strings.Repeat("f", 32)+",ghost;", r.KeyRange())
}

func TestChainAccessors(t *testing.T) {
	tests := []struct {
		name       string
		chain      Chain
		head, tail string
		index      map[string]int
	}{
		{name: "empty", chain: Chain{}, head: "", tail: "", index: map[string]int{"a": -1, "": -1}},
		{name: "learner only", chain: Chain{Learner: "a"}, head: "", tail: "", index: map[string]int{"a": -1}},
		{name: "single", chain: Chain{Members: []string{"a"}}, head: "a", tail: "a", index: map[string]int{"a": 0, "b": -1}},
		{
			name:  "three",
			chain: Chain{Members: []string{"a", "b", "c"}, Learner: "d"},
			head:  "a", tail: "c",
			index: map[string]int{"a": 0, "b": 1, "c": 2, "d": -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.head, tt.chain.Head())
			require.Equal(t, tt.tail, tt.chain.Tail())
			for id, want := range tt.index {
				require.Equal(t, want, tt.chain.Index(id), "Index(%q)", id)
			}
		})
	}
}

func TestRingLookups(t *testing.T) {
	r := testRing()
	t.Run("chain in range", func(t *testing.T) {
		require.Equal(t, r.Chains[2], r.Chain(2))
	})
	for _, p := range []int{-1, 4, 100} {
		t.Run("chain out of range "+strconv.Itoa(p), func(t *testing.T) {
			require.Equal(t, Chain{}, r.Chain(p))
		})
	}
	t.Run("chain without layout", func(t *testing.T) {
		require.Equal(t, Chain{}, (&Ring{Partitions: 4}).Chain(0))
	})
	t.Run("server found", func(t *testing.T) {
		s, ok := r.Server("s2")
		require.True(t, ok)
		require.Equal(t, "127.0.0.1:5002", s.Addr)
	})
	t.Run("server missing", func(t *testing.T) {
		s, ok := r.Server("s9")
		require.False(t, ok)
		require.Equal(t, Server{}, s)
	})
}

func TestErrorsAreDistinct(t *testing.T) {
	require.False(t, errors.Is(ErrUnknownServer, ErrInvalid))
	require.True(t, strings.HasPrefix(ErrInvalid.Error(), "ringmeta: "))
	require.True(t, strings.HasPrefix(ErrUnknownServer.Error(), "ringmeta: "))
}

func randBytes(rng *rand.Rand, maxLen int) []byte {
	b := make([]byte, rng.IntN(maxLen+1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func log2(p int) int {
	n := 0
	for p > 1 {
		p >>= 1
		n++
	}
	return n
}
