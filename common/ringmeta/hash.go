package ringmeta

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strings"
)

// Hash is the 128-bit MD5 position of a key on the ring.
type Hash [md5.Size]byte

// KeyHash places a key: MD5(namespace 0x00 key). The separator keeps two
// namespaces' keys apart ("a"+"bc" vs "ab"+"c").
func KeyHash(ns, key []byte) Hash {
	h := md5.New()
	h.Write(ns)
	h.Write([]byte{0})
	h.Write(key)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Partition returns the partition of a hash: its top log2(p) bits.
func Partition(h Hash, p int) int {
	shift := 64 - bits.TrailingZeros(uint(p))
	if shift == 64 {
		return 0
	}
	return int(binary.BigEndian.Uint64(h[:8]) >> shift)
}

// PartitionOf returns the partition of ns/key in this ring.
func (r *Ring) PartitionOf(ns, key []byte) int { return Partition(KeyHash(ns, key), r.Partitions) }

// Range returns the inclusive hash range [start, end] of partition i of p.
func Range(i, p int) (start, end Hash) {
	width := new(big.Int).Lsh(big.NewInt(1), 128)
	width.Div(width, big.NewInt(int64(p)))
	s := new(big.Int).Mul(width, big.NewInt(int64(i)))
	e := new(big.Int).Add(s, width)
	e.Sub(e, big.NewInt(1))
	s.FillBytes(start[:])
	e.FillBytes(end[:])
	return start, end
}

// KeyRange lists, in the ECE419 format "<start_hex>,<end_hex>,<host:port>;",
// the hash ranges each server heads, adjacent partitions merged.
func (r *Ring) KeyRange() string {
	return r.ranges(func(c Chain) []string { return []string{c.Head()} })
}

// KeyRangeRead lists the ranges each server may serve reads for: every full
// chain member (reads are linearizable from the tail, and from other members
// when the key is clean).
func (r *Ring) KeyRangeRead() string {
	return r.ranges(func(c Chain) []string { return c.Members })
}

func (r *Ring) ranges(who func(Chain) []string) string {
	type run struct {
		id         string
		start, end int
	}
	// Walk partitions in order, extending a server's open run while it keeps
	// the role in the next partition.
	var done []run
	open := map[string]*run{}
	for i, c := range r.Chains {
		for _, id := range who(c) {
			if id == "" { // a chain without members has no head
				continue
			}
			if o, ok := open[id]; ok && o.end == i-1 {
				o.end = i
				continue
			} else if ok {
				done = append(done, *o)
			}
			open[id] = &run{id, i, i}
		}
	}
	for _, o := range open {
		done = append(done, *o)
	}
	slices.SortFunc(done, func(a, b run) int { return cmp.Or(a.start-b.start, strings.Compare(a.id, b.id)) })
	var b strings.Builder
	for _, o := range done {
		s, _ := Range(o.start, r.Partitions)
		_, e := Range(o.end, r.Partitions)
		addr := o.id
		if srv, ok := r.Server(o.id); ok {
			addr = srv.Addr
		}
		fmt.Fprintf(&b, "%s,%s,%s;", hex.EncodeToString(s[:]), hex.EncodeToString(e[:]), addr)
	}
	return b.String()
}
