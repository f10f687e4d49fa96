package hashring

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRebalance lays out a small cluster, applies a random series of server
// removals, additions and chain damage driven by ops, and checks after each
// rebalance that every chain has min(R, N) distinct current members, that
// the load cap holds, that chain order is kept and that a second rebalance
// is a no-op.
func FuzzRebalance(f *testing.F) {
	f.Add(uint8(5), uint8(4), uint8(3), false, []byte{0x01, 0x82, 0x03})
	f.Add(uint8(1), uint8(0), uint8(1), false, []byte{0x00})
	f.Add(uint8(12), uint8(8), uint8(3), true, []byte{0x11, 0x91, 0x22, 0xf0, 0x05})
	f.Add(uint8(3), uint8(6), uint8(5), true, []byte{0x80, 0x80, 0x40})
	f.Fuzz(func(t *testing.T, n, logP, r uint8, zoned bool, ops []byte) {
		servers := fuzzServers(int(n%24)+1, zoned)
		p, repl := 1<<(logP%9), int(r%5)+1
		chains, err := Initial(servers, p, repl)
		require.NoError(t, err)
		requireFuzzLayout(t, chains, chains, servers, repl)
		next := len(servers)
		for i, op := range ops[:min(len(ops), 8)] {
			before := chains
			switch arg := int(op & 0x3f); op >> 6 {
			case 0: // a server joins
				servers = append(servers, fuzzServer(next, zoned))
				next++
			case 1: // a server leaves (the last one is kept)
				if len(servers) > 1 {
					servers = slices.Delete(servers, arg%len(servers), arg%len(servers)+1)
				}
			case 2: // chains lose a member and gain an unknown one
				before = damage(chains, arg)
			case 3: // the replication factor changes
				repl = arg%5 + 1
			}
			chains, err = Rebalance(before, servers, repl)
			require.NoError(t, err, "op %d", i)
			requireFuzzLayout(t, before, chains, servers, repl)
		}
	})
}

func fuzzServer(i int, zoned bool) Server {
	s := Server{ID: fmt.Sprintf("f%d", i)}
	if zoned {
		s.Zone = fmt.Sprintf("z%d", i%3)
	}
	return s
}

func fuzzServers(n int, zoned bool) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i] = fuzzServer(i, zoned)
	}
	return out
}

// damage drops one member from every arg-th chain (from the head when arg is
// odd) and slips an unknown id into the others.
func damage(chains [][]string, arg int) [][]string {
	out := make([][]string, len(chains))
	for p, chain := range chains {
		out[p] = slices.Clone(chain)
		switch {
		case len(chain) > 0 && p%(arg%4+1) == 0:
			i := len(chain) - 1
			if arg%2 == 1 {
				i = 0
			}
			out[p] = slices.Delete(out[p], i, i+1)
		default:
			out[p] = append(out[p], "ghost")
		}
	}
	return out
}

func requireFuzzLayout(t *testing.T, before, after [][]string, servers []Server, r int) {
	t.Helper()
	requireValid(t, after, servers, r)
	requireChainOrder(t, before, after)
	n, rr := len(servers), min(r, len(servers))
	b := loadBounds(len(after), rr, n)
	for id, l := range Load(after) {
		require.LessOrEqual(t, l, b.hi, "server %s over the cap (n=%d p=%d r=%d)", id, n, len(after), rr)
	}
	again, err := Rebalance(after, servers, r)
	require.NoError(t, err)
	require.Equal(t, after, again, "second rebalance must be a no-op")
}
