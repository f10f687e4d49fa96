package chainsm

import (
	"errors"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// TestScanGate: a scan page is served only where a tail read would be, and
// names the keys of the caller's namespace and prefix whose latest write
// is applied at the tail but not committed.
func TestScanGate(t *testing.T) {
	nt := newNet(t, "a", "b")
	nt.ring(1, ringmeta.Chain{Members: []string{"a", "b"}, Version: 1})
	if _, err := nt.nodes["b"].Scan(nt.now, 0, ScanReq{}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("scan during the holdback: %v", err)
	}
	nt.advance(2 * time.Second)
	nt.settle()
	for _, tc := range []struct {
		name, node string
		rq         ScanReq
		want       error
	}{
		{name: "head", node: "a", want: ErrNotResponsible},
		{name: "other chain version", node: "b", rq: ScanReq{Ver: 2}, want: ErrNotResponsible},
		{name: "tail", node: "b", rq: ScanReq{Ver: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := nt.nodes[tc.node].Scan(nt.now, 0, tc.rq); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Writes applied at the tail, not committed while the head has not synced.
	ops := []storage.Op{
		{Kind: storage.OpPut, NS: []byte("u"), Key: []byte("p2"), Value: []byte("v")},
		{Kind: storage.OpDelete, NS: []byte("u"), Key: []byte("p1")},
		{Kind: storage.OpPut, NS: []byte("u"), Key: []byte("q"), Value: []byte("v")},
		{Kind: storage.OpPut, NS: []byte("u2"), Key: []byte("p3"), Value: []byte("v")},
		{Kind: storage.OpPut, NS: nil, Key: []byte("p4"), Value: []byte("v")},
	}
	if err := nt.nodes["a"].Propose(nt.now, 0, Proposal{Token: 1, ID: ReqID{1, 1}, Ops: ops}); err != nil {
		t.Fatal(err)
	}
	nt.drain("a")
	nt.hold = map[string]bool{"a": true}
	nt.settle()
	got, err := nt.nodes["b"].Scan(nt.now, 0, ScanReq{NS: []byte("u"), Prefix: []byte("p")})
	if err != nil || len(got) != 2 || string(got[0]) != "p1" || string(got[1]) != "p2" {
		t.Fatalf("in flight: %q %v, want [p1 p2]", got, err)
	}
	nt.hold = nil
	nt.settle()
	if got, err := nt.nodes["b"].Scan(nt.now, 0, ScanReq{NS: []byte("u")}); err != nil || len(got) != 0 {
		t.Fatalf("in flight after the commit: %q %v", got, err)
	}
	// Without renewals the lease runs out: no page either.
	nt.now += Mono(time.Second)
	if _, err := nt.nodes["b"].Scan(nt.now, 0, ScanReq{}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("scan after the lease ran out: %v", err)
	}
}
