package kvserver

import (
	"sync"
	"sync/atomic"
)

// partState is the head-side state of one partition.
type partState struct {
	mu      sync.Mutex // serialises writes; guards lastSeq and loaded
	loaded  bool       // lastSeq was read from storage
	lastSeq uint64     // seq of the last write applied here
}

// partitions holds one partState per partition. P is fixed for the life of
// a cluster, so the table is built once from the first ring.
type partitions struct {
	table atomic.Pointer[[]*partState]
}

func (ps *partitions) resize(p int) {
	if t := ps.table.Load(); t != nil && len(*t) == p {
		return
	}
	t := make([]*partState, p)
	for i := range t {
		t[i] = &partState{}
	}
	ps.table.Store(&t)
}

func (ps *partitions) get(p int) *partState {
	return (*ps.table.Load())[p]
}
