package kvclient

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrNotFound is returned by Get and Delete for a missing key.
	ErrNotFound = errors.New("kvclient: key not found")
	// ErrEmptyKey rejects an empty key before anything is sent.
	ErrEmptyKey = errors.New("kvclient: key must not be empty")
	// ErrKeyTooLarge rejects a key over the cluster's limit.
	ErrKeyTooLarge = errors.New("kvclient: key too large")
	// ErrValueTooLarge rejects a value over the cluster's limit.
	ErrValueTooLarge = errors.New("kvclient: value too large")
	// ErrNoLayout means the cluster has not published partition chains yet.
	ErrNoLayout = errors.New("kvclient: cluster has no partition layout yet")
	// ErrUnavailable means no responsible server answered before the deadline.
	ErrUnavailable = errors.New("kvclient: cluster unavailable")
	// ErrUnknownOutcome means a write may or may not have been applied.
	ErrUnknownOutcome = errors.New("kvclient: write outcome unknown")
	// ErrLoginRequired means the cluster has authentication and the client
	// has no user to log in as.
	ErrLoginRequired = errors.New("kvclient: the cluster requires a login (--user, or login in the REPL)")
	// ErrUnauthenticated means the cluster refused the credentials or token.
	ErrUnauthenticated = errors.New("kvclient: not authenticated")
	// ErrBadCursor rejects a scan cursor that no scan of this cluster
	// returned.
	ErrBadCursor = errors.New("kvclient: bad scan cursor")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("kvclient: client closed")
)

// fromStatus translates a gRPC error into this package's errors (the reverse
// of the server's table), keeping the server's message.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unauthenticated:
		return fmt.Errorf("%w: %s", ErrUnauthenticated, st.Message())
	case codes.InvalidArgument, codes.OutOfRange, codes.ResourceExhausted,
		codes.PermissionDenied, codes.Unimplemented:
		return fmt.Errorf("kvclient: %s", st.Message())
	}
	return err
}

// retryable reports whether err may succeed at another server or a moment
// later (dead connection, server shutting down, deadline of one attempt).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}
