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
	// ErrStaleSeq reports an Apply or ApplyEntry whose seq is not above the partition's applied_seq
	// (a replayed or reordered update); nothing was written.
	ErrStaleSeq = errors.New("storage: seq not above applied_seq")
	// ErrSeqGap reports an ApplyEntry whose seq is above applied_seq + 1: the
	// log must stay contiguous, so nothing was written.
	ErrSeqGap = errors.New("storage: seq leaves a gap after applied_seq")
	// ErrTruncateAhead reports a TruncateLog above applied_seq: it would
	// delete log records not yet written.
	ErrTruncateAhead = errors.New("storage: log truncation above applied_seq")
	// ErrLogGap reports a partition whose log lacks a record between its
	// truncation point and applied_seq: the store was not written by
	// ApplyEntry alone, or lost data.
	ErrLogGap = errors.New("storage: log record missing")
	// ErrClosed reports a call on a closed Store.
	ErrClosed = errors.New("storage: store closed")
)

// errStop ends a scan early without reporting an error.
var errStop = errors.New("storage: stop")
