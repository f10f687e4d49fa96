package hashring

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strconv"
)

const (
	// MaxPartitions is the largest partition count accepted.
	MaxPartitions = 1 << 15
	// DefaultTokens is the number of ring tokens per server of the
	// scattered layout (WithTokens). 128 keeps the arc owned by a server
	// within about 10% of its share before the bounded-load pass, while
	// 1000 servers still hash in a few milliseconds.
	DefaultTokens = 128
)

// Server is a placement candidate.
type Server struct {
	ID   string
	Zone string // optional; when any server has a zone, a chain uses distinct zones where possible
}

// Move lists, for one partition, the server ids that joined and left its
// chain between two layouts.
type Move struct {
	Partition int
	Added     []string
	Removed   []string
}

type options struct {
	hash   func([]byte) uint64
	tokens int
}

// Option configures placement.
type Option func(*options)

// WithHash replaces the token hash (default: the first 8 bytes of MD5, big
// endian, like the key hash). Tests inject a hash to pin token positions.
func WithHash(h func([]byte) uint64) Option {
	return func(o *options) {
		if h != nil {
			o.hash = h
		}
	}
}

// WithTokens makes Initial scatter chains over all servers by consistent
// hashing with n ring tokens (virtual nodes) per server, instead of laying
// them out as runs of neighbours; n < 1 means DefaultTokens. Every server's
// chains then reach every other server: tests use it for chains of every
// shape and order.
func WithTokens(n int) Option {
	return func(o *options) {
		o.tokens = DefaultTokens
		if n >= 1 {
			o.tokens = n
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{hash: md5Hash}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func md5Hash(b []byte) uint64 {
	sum := md5.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// Initial computes the first layout: for each of `partitions` partitions, a
// chain of min(replicas, len(servers)) distinct server ids, laid out as runs
// of neighbours on the ring (see neighbors), or with WithTokens placed by
// bounded-load consistent hashing; either is then evened out by the same
// balancing pass as Rebalance, so Rebalance of the result with the same
// servers is a no-op.
func Initial(servers []Server, partitions, replicas int, opts ...Option) ([][]string, error) {
	if err := checkShape(partitions, replicas); err != nil {
		return nil, err
	}
	st, _, err := newState(servers, partitions, replicas)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	r := st.r
	b := loadBounds(partitions, r, len(st.ids))
	st.placeOnRing(o)
	if o.tokens == 0 {
		st.neighbors()
		st.balance(b, nil)
		return st.export(), nil
	}
	rg := newRing(st.ids, o)
	w := newWalker(st, b.hi)
	shift := 64 - bits.TrailingZeros(uint(partitions))
	for p := range partitions {
		start := uint64(p) << shift // a shift of 64 yields 0: one partition
		first := sort.Search(len(rg.pos), func(i int) bool { return rg.pos[i] >= start })
		for len(st.chains[p]) < r {
			w.assign(p, w.pick(rg, first, p))
		}
	}
	st.balance(b, nil)
	return st.export(), nil
}

// Diff lists the membership differences between two layouts, one Move per
// partition whose set of members changed, in partition order. A partition
// present in only one layout counts as empty in the other.
func Diff(before, after [][]string) []Move {
	var moves []Move
	for p := range max(len(before), len(after)) {
		var b, a []string
		if p < len(before) {
			b = before[p]
		}
		if p < len(after) {
			a = after[p]
		}
		added, removed := minus(a, b), minus(b, a)
		if len(added) > 0 || len(removed) > 0 {
			moves = append(moves, Move{Partition: p, Added: added, Removed: removed})
		}
	}
	return moves
}

// minus returns the members of a missing from b, in a's order. Chains are a
// handful of ids, so a linear scan beats building a set.
func minus(a, b []string) []string {
	var out []string
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

// Load returns the number of partition replicas per server id. Servers that
// hold nothing are absent.
func Load(chains [][]string) map[string]int {
	load := make(map[string]int)
	for _, chain := range chains {
		for _, id := range chain {
			load[id]++
		}
	}
	return load
}

func checkShape(partitions, replicas int) error {
	if partitions < 1 || partitions > MaxPartitions || partitions&(partitions-1) != 0 {
		return fmt.Errorf("%w: got %d", ErrBadPartitions, partitions)
	}
	if replicas < 1 {
		return fmt.Errorf("%w: got %d", ErrBadReplicas, replicas)
	}
	return nil
}

// bounds is the band every server's load is steered into. hi is the hard
// cap: 1.10x the mean, or the mean rounded up when that is larger (a cap
// below it cannot be met). lo and top, the mean rounded down and up, are
// only targets, pursued by zone-keeping moves: a layout that tight lets the
// next add or remove move about the ideal P*R/N replicas and no more, where
// a layout spread up to the cap would move up to 1.10x that.
type bounds struct{ lo, top, hi int }

func loadBounds(partitions, r, n int) bounds {
	total := partitions * r
	top := (total + n - 1) / n
	return bounds{lo: total / n, top: top, hi: max(top, total*11/(10*n))}
}

// ring is the sorted token circle: pos[i] is owned by server srv[i].
type ring struct {
	pos []uint64
	srv []int
}

func newRing(ids []string, o options) ring {
	type token struct {
		pos uint64
		srv int
	}
	toks := make([]token, 0, len(ids)*o.tokens)
	var buf []byte
	for s, id := range ids {
		for k := range o.tokens {
			buf = strconv.AppendInt(append(append(buf[:0], id...), '#'), int64(k), 10)
			toks = append(toks, token{o.hash(buf), s}) // token k of id is hash("<id>#<k>")
		}
	}
	// Ties (hash collisions) break by server so the ring is deterministic.
	slices.SortFunc(toks, func(a, b token) int {
		if a.pos != b.pos {
			return cmp.Compare(a.pos, b.pos)
		}
		return a.srv - b.srv
	})
	rg := ring{pos: make([]uint64, len(toks)), srv: make([]int, len(toks))}
	for i, t := range toks {
		rg.pos[i], rg.srv[i] = t.pos, t.srv
	}
	return rg
}

// walker places Initial's replicas. It counts, per zone and overall, the
// servers still under the cap, so it knows before walking which rules can be
// met and never walks a whole lap in vain.
type walker struct {
	st         *state
	cap        int
	underCap   int   // servers with load < cap
	avail      []int // per zone: servers with load < cap
	zonesAvail int   // zones with avail > 0
}

func newWalker(st *state, limit int) *walker {
	w := &walker{st: st, cap: limit, underCap: len(st.ids), avail: make([]int, st.nzones)}
	for _, z := range st.zone {
		w.avail[z]++
	}
	w.zonesAvail = st.nzones
	return w
}

func (w *walker) assign(p, s int) {
	w.st.add(p, s)
	if w.st.loads.load[s] == w.cap {
		w.underCap--
		z := w.st.zone[s]
		if w.avail[z]--; w.avail[z] == 0 {
			w.zonesAvail--
		}
	}
}

// pick walks clockwise from token first and returns the first server not in
// the chain that is under the cap and in a zone the chain does not use yet.
// Rules that no server can meet are dropped, the zone rule before the cap.
func (w *walker) pick(rg ring, first, p int) int {
	st := w.st
	chain := st.chains[p]
	capOK, zoneOK := w.underCap, w.zonesAvail
	for i, s := range chain {
		if st.loads.load[s] < w.cap {
			capOK--
		}
		if z := st.zone[s]; w.avail[z] > 0 && !slices.ContainsFunc(chain[:i], func(o int) bool { return st.zone[o] == z }) {
			zoneOK--
		}
	}
	needCap, needZone := capOK > 0, st.nzones > 1 && zoneOK > 0
	for i := range rg.srv {
		s := rg.srv[(first+i)%len(rg.srv)]
		switch {
		case st.inChain(p, s),
			needCap && st.loads.load[s] >= w.cap,
			needZone && st.zoneUsed(p, s):
			continue
		}
		return s
	}
	panic("hashring: ring walk found no server") // unreachable: len(chain) < r <= n
}
