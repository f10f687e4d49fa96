package storage

import "errors"

var (
	// ErrBadKey reports an encoded key that is not partition|ns|0x00|key.
	ErrBadKey = errors.New("storage: malformed key")
	// ErrBadPartition reports a partition outside [0, MaxPartitions).
	ErrBadPartition = errors.New("storage: partition out of range")
	// ErrBadNamespace reports a namespace that contains a 0x00 byte.
	ErrBadNamespace = errors.New("storage: namespace contains 0x00")
	// ErrBadOp reports an Op whose Kind is neither OpPut nor OpDelete.
	ErrBadOp = errors.New("storage: unknown op kind")
	// ErrCorruptRecord reports a stored value or state blob that cannot be decoded.
	ErrCorruptRecord = errors.New("storage: corrupt record")
	// ErrStaleSeq reports an Apply whose seq is not above the partition's applied_seq
	// (a replayed or reordered update); nothing was written.
	ErrStaleSeq = errors.New("storage: seq not above applied_seq")
	// ErrClosed reports a call on a closed Store.
	ErrClosed = errors.New("storage: store closed")
)

// errStop ends a scan early without reporting an error.
var errStop = errors.New("storage: stop")
