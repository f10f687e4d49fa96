package chainstore

import (
	"testing"

	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
	"github.com/stretchr/testify/require"
)

// TestGroups: a Ready's storage ops commit in order, a drop or an ingest by
// itself, the rest together up to about maxGroupBytes.
func TestGroups(t *testing.T) {
	apply := func(seq uint64, size int) chainsm.StorageOp {
		return chainsm.StorageOp{Kind: chainsm.StApply, Part: 1, Entry: &chainsm.Entry{Seq: seq,
			Ops: []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: make([]byte, size)}}}}
	}
	kinds := func(gs [][]chainsm.StorageOp) [][]chainsm.StorageKind {
		var out [][]chainsm.StorageKind
		for _, g := range gs {
			var ks []chainsm.StorageKind
			for _, op := range g {
				ks = append(ks, op.Kind)
			}
			out = append(out, ks)
		}
		return out
	}
	require.Empty(t, Groups(nil))
	ops := []chainsm.StorageOp{
		{Kind: chainsm.StVersion}, apply(1, 10), {Kind: chainsm.StTruncate}, {Kind: chainsm.StDrop},
		{Kind: chainsm.StDrop}, apply(2, 10), {Kind: chainsm.StIngest}, {Kind: chainsm.StForget},
	}
	require.Equal(t, [][]chainsm.StorageKind{
		{chainsm.StVersion, chainsm.StApply, chainsm.StTruncate}, {chainsm.StDrop}, {chainsm.StDrop},
		{chainsm.StApply}, {chainsm.StIngest}, {chainsm.StForget},
	}, kinds(Groups(ops)))

	var big []chainsm.StorageOp
	for i := range 10 {
		big = append(big, apply(uint64(i+1), 1<<20))
	}
	gs := Groups(big)
	require.Len(t, gs, 3, "4 MiB a group: 4, 4 and 2 entries of 1 MiB")
	n := 0
	for _, g := range gs {
		for _, op := range g {
			n++
			require.Equal(t, uint64(n), op.Entry.Seq, "in order")
		}
	}
}
