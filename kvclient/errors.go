package kvclient

import (
	"errors"

	"github.com/ecskv/ecskv/common/kverr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The library's own conditions.
var (
	// ErrNotFound is returned by Get and Delete for a missing key.
	ErrNotFound = errors.New("kvclient: key not found")
	// ErrNoLayout means the cluster has not published partition chains yet.
	ErrNoLayout = errors.New("kvclient: cluster has no partition layout yet")
	// ErrUnavailable means no responsible server answered before the
	// deadline; it wraps the last refusal or failure seen.
	ErrUnavailable = errors.New("kvclient: cluster unavailable")
	// ErrUnknownOutcome means a write may or may not have been applied.
	ErrUnknownOutcome = errors.New("kvclient: write outcome unknown")
	// ErrLoginRequired means the cluster has authentication and the client
	// has no user to log in as.
	ErrLoginRequired = errors.New("kvclient: the cluster requires a login (--user, or login in the REPL)")
	// ErrBadCursor rejects a scan cursor that no scan of this cluster
	// returned.
	ErrBadCursor = errors.New("kvclient: bad scan cursor")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("kvclient: client closed")
)

// Error is a refusal: the server's message, its gRPC code (Code), and what
// it matches with errors.Is, one of the errors below and its class.
type Error = kverr.Error

// The refusals of the servers (kverr's table), matched with errors.Is. The
// library refuses what it can check before sending (empty or oversized
// keys and values, a negative TTL) with the same errors.
var (
	// ErrInvalidArgument matches every refusal of a malformed or
	// out-of-bounds request (codes.InvalidArgument).
	ErrInvalidArgument = kverr.ErrInvalidArgument
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = kverr.ErrEmptyKey
	// ErrKeyTooLarge rejects a key over the cluster's limit.
	ErrKeyTooLarge = kverr.ErrKeyTooLarge
	// ErrValueTooLarge rejects a value over the cluster's limit.
	ErrValueTooLarge = kverr.ErrValueTooLarge
	// ErrBadTTL rejects a negative TTL or one over 100 years.
	ErrBadTTL = kverr.ErrBadTTL
	// ErrBadUser rejects a user name that is not 1-63 letters, digits, '.', '_' or '-'.
	ErrBadUser = kverr.ErrBadUser
	// ErrBadPassword rejects an empty password or one over 72 bytes.
	ErrBadPassword = kverr.ErrBadPassword

	// ErrUnauthenticated matches every refusal of credentials or a token
	// (codes.Unauthenticated).
	ErrUnauthenticated = kverr.ErrUnauthenticated
	// ErrBadCredentials is a wrong user name or password.
	ErrBadCredentials = kverr.ErrBadCredentials
	// ErrInvalidToken is a token the cluster does not accept (its user was
	// removed or changed); the library logs in again once before returning it.
	ErrInvalidToken = kverr.ErrInvalidToken
	// ErrTokenExpired is an expired token; the library logs in again once
	// before returning it.
	ErrTokenExpired = kverr.ErrTokenExpired
	// ErrAuthDisabled refuses Login on a cluster without authentication.
	ErrAuthDisabled = kverr.ErrAuthDisabled
	// ErrPermissionDenied matches a method or a namespace refused to the
	// client's certificate (codes.PermissionDenied).
	ErrPermissionDenied = kverr.ErrPermissionDenied
	// ErrForbiddenNamespace refuses WithNamespace's namespace: not a front
	// door's, or the client's certificate is not a member's.
	ErrForbiddenNamespace = kverr.ErrForbiddenNamespace

	// ErrResourceExhausted matches every refusal over a limit
	// (codes.ResourceExhausted).
	ErrResourceExhausted = kverr.ErrResourceExhausted
	// ErrWatchCompacted ends a watch that starts from (or must resume at)
	// writes no chain member keeps any more: re-read, then watch from now.
	ErrWatchCompacted = kverr.ErrWatchCompacted
	// ErrWatchLagged ends a watch whose reader fell further behind the
	// writes than the servers keep: re-read, then watch from now.
	ErrWatchLagged = kverr.ErrWatchLagged
	// ErrRateLimited refuses a request over the user's rate limit on a server.
	ErrRateLimited = kverr.ErrRateLimited
	// ErrTooManyConnections refuses a new connection's first call while the
	// server has max-connections connections.
	ErrTooManyConnections = kverr.ErrTooManyConnections
	// ErrTooManyForwards refuses a request the server would forward to
	// the key's server while it forwards --max-forwards requests.
	ErrTooManyForwards = kverr.ErrTooManyForwards
	// ErrTooManyAttempts refuses a login during the back-off after failed ones.
	ErrTooManyAttempts = kverr.ErrTooManyAttempts

	// ErrNotResponsible, ErrServerStopped, ErrWriteLocked and
	// ErrServerNotReady are answers the library retries (at the right
	// server, or a moment later); they surface only inside ErrUnavailable
	// when the deadline passes.
	ErrNotResponsible = kverr.ErrNotResponsible
	ErrServerStopped  = kverr.ErrServerStopped
	ErrWriteLocked    = kverr.ErrWriteLocked
	ErrServerNotReady = kverr.ErrServerNotReady
)

// retryable reports whether err may succeed at another server or a moment
// later (dead connection, server shutting down, deadline of one attempt).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}
