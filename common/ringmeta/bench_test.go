package ringmeta

import (
	"fmt"
	"testing"
)

var partSink int

// BenchmarkPartitionOf is the ring lookup every request makes (client and
// server): hash the key, take its partition, find its chain.
func BenchmarkPartitionOf(b *testing.B) {
	r := &Ring{Partitions: 1024, Chains: make([]Chain, 1024)}
	for p := range r.Chains {
		r.Chains[p] = Chain{Members: []string{"s1", "s2", "s3"}, Version: 1}
	}
	ns := []byte("alice")
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%010d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p := r.PartitionOf(ns, keys[i%len(keys)])
		partSink += len(r.Chain(p).Tail())
	}
}
