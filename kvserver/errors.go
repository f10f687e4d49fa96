package kvserver

import (
	"errors"
	"fmt"
	"io"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// MaxTTLMs is the longest TTL a put may ask for: 100 years, far from the
// int64 overflow of now + ttl.
const MaxTTLMs = 100 * 365 * 24 * 3600 * 1000

// The refusals are rows of kverr's table: the client library receives them
// as the same sentinels.
var (
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = kverr.ErrEmptyKey
	// ErrKeyTooLarge rejects a key over the cluster's limit.
	ErrKeyTooLarge = kverr.ErrKeyTooLarge
	// ErrValueTooLarge rejects a value over the cluster's limit.
	ErrValueTooLarge = kverr.ErrValueTooLarge
	// ErrBadTTL rejects a negative TTL, or one beyond MaxTTLMs (whose
	// expiry would overflow).
	ErrBadTTL = kverr.ErrBadTTL
	// ErrAuthDisabled is returned for Login while authentication is off.
	ErrAuthDisabled = kverr.ErrAuthDisabled
	// ErrRateLimited refuses a request over the user's request rate.
	ErrRateLimited = kverr.ErrRateLimited
	// ErrNotInRing is returned before the server has seen a ring.
	ErrNotInRing = kverr.ErrNotInRing
	// ErrUnknownOp rejects a Batch operation that is not a put, get,
	// delete, incr or expire.
	ErrUnknownOp = kverr.ErrUnknownOp
	// ErrBadCondition rejects a condition of unknown kind.
	ErrBadCondition = kverr.ErrBadCondition
	// ErrBadWatch rejects a watch of no partition, or of key and prefix.
	ErrBadWatch = kverr.ErrBadWatch
	// ErrWatchCompacted refuses a watch from writes no longer kept.
	ErrWatchCompacted = kverr.ErrWatchCompacted
	// ErrWatchLagged ends a watch that fell behind what is kept.
	ErrWatchLagged = kverr.ErrWatchLagged
	// ErrBatchStalled closes a Batch stream whose client has not read its
	// answers: they reached max-batch-queued-bytes and none was read for
	// batch-stall-timeout.
	ErrBatchStalled = kverr.ErrBatchStalled
	// ErrTooManyConnections refuses a call on a new connection while
	// max-connections connections have made calls.
	ErrTooManyConnections = kverr.ErrTooManyConnections
	// ErrRequestIDReused refuses a write whose client id and request id
	// were already used for a different write (another key, value or
	// kind): a retry must repeat its write exactly.
	ErrRequestIDReused = kverr.ErrRequestIDReused
	// ErrForbiddenNamespace refuses a request header's namespace: one not
	// reserved for a front door, or asked for by a caller that is not a
	// cluster member.
	ErrForbiddenNamespace = kverr.ErrForbiddenNamespace
	// ErrBadScan rejects a scan request: a malformed cursor, one naming a
	// partition the cluster does not have, or a prefix or cursor key over
	// the cluster's key limit.
	ErrBadScan = kverr.ErrBadScan
	// ErrStopped is returned after Stop.
	ErrStopped = kverr.ErrServerStopped
)

// below are the errors of the packages under the gRPC boundary, which do
// not know kverr's table, with the rows they are sent as.
var below = []struct{ err, row error }{
	{errChainChanged, kverr.ErrChainChanged},
	{storage.ErrClosed, kverr.ErrServerStopped},
}

// toStatus translates a domain error into the gRPC status of its row of
// kverr's table (Internal when it has none).
func toStatus(err error) error {
	for _, b := range below {
		if errors.Is(err, b.err) {
			err = rowError{err, b.row}
			break
		}
	}
	return kverr.ToStatus(err)
}

// rowError gives an error of a package below the boundary its row; its
// message stays its own (kverr.ToStatus puts the row's first if needed).
type rowError struct {
	error
	row error
}

func (e rowError) Unwrap() []error { return []error{e.error, e.row} }

// endOfStream turns the client's end of a stream (io.EOF) into nil.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func tooLarge(sentinel error, n, limit int) error {
	return fmt.Errorf("%w: %d bytes, limit is %d", sentinel, n, limit)
}
