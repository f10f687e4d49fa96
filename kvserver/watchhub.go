package kvserver

import (
	"fmt"
	"sync"

	"github.com/ecskv/ecskv/kvserver/chainsm"
)

// Bounds of the history a server keeps for watchers: the committed writes
// a watcher may still resume from, here or after a failover at another
// member. The byte budget is the server's, shared by its partitions (a
// server holds hundreds), each keeping at least watchMinPartBytes.
const (
	watchHistoryEntries = 4096     // per partition
	watchHistoryBytes   = 64 << 20 // per server
	watchMinPartBytes   = 64 << 10
)

// watchHub keeps, per partition this server is a member of, the writes
// that committed here most recently, in seq order, and wakes the watchers
// of the partition when more commit. Watchers pull what they have not
// seen: a watcher is never waited for, and one that falls behind what the
// history keeps is told so (ErrWatchLagged) instead of missing writes.
type watchHub struct {
	mu         sync.Mutex
	parts      map[int]*watchHistory
	maxEntries int // per partition
	maxBytes   int // for all partitions
}

type watchHistory struct {
	entries []*chainsm.Entry // consecutive seqs
	sizes   []int            // entryBytes of each entry: evicting reads no old entry
	bytes   int
	last    uint64 // the last seq committed here (0: none since start)
	wake    map[chan struct{}]struct{}
}

func newWatchHub() *watchHub {
	return &watchHub{parts: map[int]*watchHistory{}, maxEntries: watchHistoryEntries, maxBytes: watchHistoryBytes}
}

func (h *watchHub) part(p int) *watchHistory {
	wh := h.parts[p]
	if wh == nil {
		wh = &watchHistory{wake: map[chan struct{}]struct{}{}}
		h.parts[p] = wh
	}
	return wh
}

// committed takes entries that committed here (under the core's mu, in
// commit order) and wakes the partition's watchers.
func (h *watchHub) committed(c chainsm.Committed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wh := h.part(c.Part)
	for _, e := range c.Entries {
		if wh.last != 0 && e.Seq != wh.last+1 {
			wh.entries, wh.sizes, wh.bytes = nil, nil, 0 // a gap (restart, snapshot): history starts anew
		}
		n := entryBytes(e)
		wh.entries, wh.sizes = append(wh.entries, e), append(wh.sizes, n)
		wh.bytes += n
		wh.last = e.Seq
	}
	limit := max(watchMinPartBytes, h.maxBytes/len(h.parts))
	k := 0
	for len(wh.entries)-k > h.maxEntries || wh.bytes > limit && len(wh.entries)-k > 1 {
		wh.bytes -= wh.sizes[k]
		wh.entries[k] = nil
		k++
	}
	wh.entries, wh.sizes = wh.entries[k:], wh.sizes[k:]
	for ch := range wh.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func entryBytes(e *chainsm.Entry) int {
	n := 64
	for _, o := range e.Ops {
		n += len(o.NS) + len(o.Key) + len(o.Value)
	}
	return n
}

// subscribe registers a wake-up channel for partition p's commits.
func (h *watchHub) subscribe(p int) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{}, 1)
	h.part(p).wake[ch] = struct{}{}
	return ch
}

func (h *watchHub) unsubscribe(p int, ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.part(p).wake, ch)
}

// align makes p's history agree with what the node committed (committed,
// read under the core's mu, as every commit is handed over): a member
// that copied the partition (a learner promoted, a restart) committed up
// to there without history, and a watch from before that point must be
// refused here rather than wait for writes it will never be shown.
func (h *watchHub) align(p int, committed uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wh := h.part(p)
	if wh.last != committed {
		for i := range wh.entries {
			wh.entries[i] = nil
		}
		wh.entries, wh.sizes, wh.bytes, wh.last = nil, nil, 0, committed
	}
}

// start is where a watch from afterSeq begins: the seq after it, or after
// the last commit here for 0 ("from now").
func (h *watchHub) start(p int, afterSeq uint64) uint64 {
	if afterSeq != 0 {
		return afterSeq + 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.part(p).last + 1
}

// first is the first seq of p's history here (the next commit's when it
// is empty).
func (h *watchHub) first(p int) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	wh := h.part(p)
	if len(wh.entries) == 0 {
		return wh.last + 1
	}
	return wh.entries[0].Seq
}

// since returns the entries of p from seq next on (at most max). A next the history no longer holds is an error:
// ErrWatchCompacted when the watch asked for it, ErrWatchLagged when it
// fell behind (lagged).
func (h *watchHub) since(p int, next uint64, max int, lagged bool) ([]*chainsm.Entry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wh := h.part(p)
	if next > wh.last {
		return nil, nil // nothing new yet
	}
	if len(wh.entries) == 0 || next < wh.entries[0].Seq {
		first := wh.last + 1
		if len(wh.entries) > 0 {
			first = wh.entries[0].Seq
		}
		if lagged {
			return nil, fmt.Errorf("%w: partition %d: the writes after seq %d are no longer kept here (history starts at %d)", ErrWatchLagged, p, next-1, first)
		}
		return nil, fmt.Errorf("%w: partition %d: the writes after seq %d are no longer kept here (history starts at %d)", ErrWatchCompacted, p, next-1, first)
	}
	i := int(next - wh.entries[0].Seq)
	out := wh.entries[i:min(len(wh.entries), i+max)]
	return append([]*chainsm.Entry(nil), out...), nil
}
