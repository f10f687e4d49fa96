package chainsm

import "errors"

var (
	// ErrNotResponsible: this member does not serve the request in the
	// chain version it holds (or the request names another version).
	ErrNotResponsible = errors.New("chainsm: not responsible")
	// ErrChainChanged fails a waiting write whose chain changed before it
	// committed; its outcome is unknown here, so the client retries with the
	// same request id at the new head.
	ErrChainChanged = errors.New("chainsm: chain changed before the write committed; retry")
	// ErrNotReady: the partition cannot serve now (no read lease, holdback,
	// promotion sync, or no ring yet); retry shortly.
	ErrNotReady = errors.New("chainsm: partition not ready")
	// ErrReadFromTail: the key has a write in flight here; read it at the tail.
	ErrReadFromTail = errors.New("chainsm: key has a write in flight; read from the tail")
	// ErrIDReused refuses a write whose request id this partition already
	// sequenced for a different operation: a retry must repeat its write.
	ErrIDReused = errors.New("chainsm: request id already used for a different write")
	// ErrStopped: the node stopped.
	ErrStopped = errors.New("chainsm: stopped")
)
