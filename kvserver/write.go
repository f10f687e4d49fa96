package kvserver

import (
	"time"

	"github.com/ecskv/ecskv/kvserver/storage"
)

// applyWrite runs one write at the head of its partition.
func (s *Server) applyWrite(p int, op storage.Op) (existed bool, err error) {
	ps := s.parts.get(p)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return s.applyLocked(ps, p, op)
}

// applyLocked assigns the next sequence number and applies data and
// applied_seq in one batch. ps.mu must be held.
// Invariant: per partition, seq grows by exactly one per applied batch and
// storage's applied_seq equals lastSeq whenever mu is free.
func (s *Server) applyLocked(ps *partState, p int, op storage.Op) (existed bool, err error) {
	if !ps.loaded {
		if ps.lastSeq, err = s.store.AppliedSeq(p); err != nil {
			return false, err
		}
		ps.loaded = true
	}
	ex, err := s.store.Apply(p, ps.lastSeq+1, []storage.Op{op}, nowMs())
	if err != nil {
		return false, err
	}
	ps.lastSeq++
	return ex[0], nil
}

func nowMs() int64 { return time.Now().UnixMilli() }
