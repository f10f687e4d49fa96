package etcdmodel

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// WatchID names a watch; Watch hands out 1, 2, 3...
type WatchID int64

// EventType is the kind of an Event.
type EventType int

// The kinds of watch events.
const (
	// EventPut: KV is the key after the write.
	EventPut EventType = iota + 1
	// EventDelete: KV holds the Key and ModRev = the deleting revision.
	EventDelete
	// EventCompacted ends a watch that asked for, or fell behind into,
	// compacted history (ErrCompacted): the watcher re-lists with Range and
	// watches again from that revision + 1.
	EventCompacted
)

// Event is one change seen by a watch, or the terminal EventCompacted.
type Event struct {
	Type EventType
	KV   KV
	// CompactRev is the compaction revision of an EventCompacted.
	CompactRev int64
}

// Err returns ErrCompacted for an EventCompacted, nil otherwise.
func (e Event) Err() error {
	if e.Type == EventCompacted {
		return fmt.Errorf("compacted at %d: %w", e.CompactRev, ErrCompacted)
	}
	return nil
}

func (e Event) clone() Event {
	e.KV = e.KV.clone()
	return e
}

type watch struct {
	id       WatchID
	prefix   string
	startRev int64
	queue    []Event // not yet drained, in revision order
	done     bool    // compacted: queue holds the terminal event, nothing follows
}

// Watch watches the keys starting with prefix from startRev (0 = the next
// revision). A startRev still in history replays its events first; one below
// the compaction revision gets only EventCompacted.
func (s *Store) Watch(prefix string, startRev int64) WatchID {
	w := &watch{id: s.nextWatch, prefix: prefix, startRev: startRev}
	s.nextWatch++
	s.watches = append(s.watches, w) // ids only grow, so the slice stays sorted
	if w.startRev == 0 {
		w.startRev = s.rev + 1
	}
	if w.startRev < s.compactRev {
		w.compacted(s.compactRev)
		return w.id
	}
	i, _ := slices.BinarySearchFunc(s.history, w.startRev, func(e Event, rev int64) int {
		return cmp.Compare(e.KV.ModRev, rev)
	})
	w.add(s.history[i:])
	return w.id
}

// Cancel removes the watch and its queued events.
func (s *Store) Cancel(id WatchID) {
	s.watches = slices.DeleteFunc(s.watches, func(w *watch) bool { return w.id == id })
}

// Pending returns the watch's queued events without removing them.
func (s *Store) Pending(id WatchID) []Event {
	w := s.watch(id)
	if w == nil {
		return nil
	}
	out := make([]Event, len(w.queue))
	for i, ev := range w.queue {
		out[i] = ev.clone()
	}
	return out
}

// Drain returns and removes the watch's queued events. Draining the terminal
// EventCompacted also removes the watch, as etcd cancels it.
func (s *Store) Drain(id WatchID) []Event {
	out := s.Pending(id)
	if w := s.watch(id); w != nil {
		w.queue = nil
		if w.done {
			s.Cancel(id)
		}
	}
	return out
}

// PendingWatches returns the watches with queued events, in id order.
func (s *Store) PendingWatches() []WatchID {
	var ids []WatchID
	for _, w := range s.watches {
		if len(w.queue) > 0 {
			ids = append(ids, w.id)
		}
	}
	return ids
}

// Compact discards the history below rev (rev itself stays watchable). A
// watch with queued events below rev has fallen behind: its queue is
// replaced by EventCompacted, as etcd cancels a slow watcher it can no
// longer catch up.
func (s *Store) Compact(rev int64) error {
	switch {
	case rev <= s.compactRev:
		return fmt.Errorf("compact %d after %d: %w", rev, s.compactRev, ErrCompacted)
	case rev > s.rev:
		return fmt.Errorf("compact %d at rev %d: %w", rev, s.rev, ErrFutureRev)
	}
	s.compactRev = rev
	i, _ := slices.BinarySearchFunc(s.history, rev, func(e Event, rev int64) int {
		return cmp.Compare(e.KV.ModRev, rev)
	})
	s.history = slices.Clone(s.history[i:]) // let the discarded events go
	for _, w := range s.watches {
		if !w.done && len(w.queue) > 0 && w.queue[0].KV.ModRev < rev {
			w.compacted(rev)
		}
	}
	return nil
}

// publish queues the events of one revision on every watch they match.
func (s *Store) publish(evs []Event) {
	for _, w := range s.watches {
		w.add(evs)
	}
}

func (w *watch) add(evs []Event) {
	if w.done {
		return
	}
	for _, ev := range evs {
		if ev.KV.ModRev >= w.startRev && strings.HasPrefix(ev.KV.Key, w.prefix) {
			w.queue = append(w.queue, ev)
		}
	}
}

func (w *watch) compacted(rev int64) {
	w.queue = []Event{{Type: EventCompacted, CompactRev: rev}}
	w.done = true
}

func (s *Store) watch(id WatchID) *watch {
	i, ok := slices.BinarySearchFunc(s.watches, id, func(w *watch, id WatchID) int {
		return cmp.Compare(w.id, id)
	})
	if !ok {
		return nil
	}
	return s.watches[i]
}
