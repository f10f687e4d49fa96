package kvserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ecskv/ecskv/common/auth"
	"github.com/ecskv/ecskv/kvserver/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxTTLMs is the longest TTL a put may ask for: 100 years, far from the
// int64 overflow of now + ttl.
const MaxTTLMs = 100 * 365 * 24 * 3600 * 1000

var (
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = errors.New("kvserver: key must not be empty")
	// ErrKeyTooLarge rejects a key over the cluster's limit.
	ErrKeyTooLarge = errors.New("kvserver: key too large")
	// ErrValueTooLarge rejects a value over the cluster's limit.
	ErrValueTooLarge = errors.New("kvserver: value too large")
	// ErrBadTTL rejects a negative TTL, or one beyond MaxTTLMs (whose
	// expiry would overflow).
	ErrBadTTL = fmt.Errorf("kvserver: ttl must be between 0 and %d ms (100 years)", MaxTTLMs)
	// ErrAuthDisabled is returned for Login while authentication is off.
	ErrAuthDisabled = errors.New("kvserver: authentication is not enabled on this cluster")
	// ErrRateLimited refuses a request over the user's request rate.
	ErrRateLimited = errors.New("kvserver: request rate limit")
	// ErrNotInRing is returned before the server has seen a ring.
	ErrNotInRing = errors.New("kvserver: no ring yet")
	// ErrUnknownOp rejects a Batch operation that is not a put, get or delete.
	ErrUnknownOp = errors.New("kvserver: batch operation must be a put, get or delete")
	// ErrBatchStalled closes a Batch stream whose client has not read its
	// answers: they reached max-batch-queued-bytes and none was read for
	// batch-stall-timeout.
	ErrBatchStalled = errors.New("kvserver: batch stream closed: the client does not read its answers")
	// ErrTooManyConnections refuses a call on a new connection while
	// max-connections connections have made calls.
	ErrTooManyConnections = errors.New("kvserver: connection limit reached")
	// ErrRequestIDReused refuses a write whose client id and request id
	// were already used for a different write (another key, value or
	// kind): a retry must repeat its write exactly.
	ErrRequestIDReused = errors.New("kvserver: request id already used for a different write")
	// ErrForbiddenNamespace refuses a request header's namespace: one not
	// reserved for a front door, or asked for by a caller that is not a
	// cluster member.
	ErrForbiddenNamespace = errors.New("kvserver: namespace is only for the servers' front doors")
	// ErrBadScan rejects a scan request: a malformed cursor, one naming a
	// partition the cluster does not have, or a prefix or cursor key over
	// the cluster's key limit.
	ErrBadScan = errors.New("kvserver: bad scan request")
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("kvserver: server stopped")
)

// toStatus is the one translation table from domain errors to gRPC statuses.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrEmptyKey), errors.Is(err, ErrKeyTooLarge),
		errors.Is(err, ErrValueTooLarge), errors.Is(err, ErrBadTTL), errors.Is(err, storage.ErrBadKey), errors.Is(err, ErrUnknownOp),
		errors.Is(err, ErrRequestIDReused), errors.Is(err, ErrBadScan):
		code = codes.InvalidArgument
	case errors.Is(err, ErrAuthDisabled):
		code = codes.Unimplemented
	case errors.Is(err, ErrForbiddenNamespace):
		code = codes.PermissionDenied
	case errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrTokenExpired), errors.Is(err, auth.ErrBadCredentials):
		code = codes.Unauthenticated
	case errors.Is(err, auth.ErrBadUser), errors.Is(err, auth.ErrBadPassword):
		code = codes.InvalidArgument
	case errors.Is(err, auth.ErrTooManyAttempts), errors.Is(err, ErrRateLimited),
		errors.Is(err, ErrBatchStalled), errors.Is(err, ErrTooManyConnections):
		code = codes.ResourceExhausted
	case errors.Is(err, auth.ErrNotReady), errors.Is(err, auth.ErrUserUnknownYet), errors.Is(err, auth.ErrBusy):
		code = codes.Unavailable
	case errors.Is(err, ErrStopped), errors.Is(err, ErrNotInRing), errors.Is(err, storage.ErrClosed),
		errors.Is(err, errChainChanged):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

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
