package kverr

import (
	"errors"

	"github.com/ecskv/ecskv/common/kvpb"
	"google.golang.org/grpc/codes"
)

// The classes: every row of a code matches its class with errors.Is. They
// are never sent themselves, so their messages are plain words.
var (
	// ErrInvalidArgument matches every refusal of a malformed or
	// out-of-bounds request.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthenticated matches every refusal of credentials or a token.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrPermissionDenied matches every refusal of a method or a namespace
	// to the caller's certificate.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrResourceExhausted matches every refusal over a limit of rate,
	// connections or buffered answers.
	ErrResourceExhausted = errors.New("resource exhausted")
)

var classes = map[codes.Code]error{
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.Unauthenticated:   ErrUnauthenticated,
	codes.PermissionDenied:  ErrPermissionDenied,
	codes.ResourceExhausted: ErrResourceExhausted,
}

// The rows' sentinels. kvserver and common/auth return these (wrapped with
// detail after the message), so the table and the servers say the same.
var (
	// ErrEmptyKey rejects an empty key.
	ErrEmptyKey = errors.New("kvserver: key must not be empty")
	// ErrKeyTooLarge rejects a key over the cluster's limit.
	ErrKeyTooLarge = errors.New("kvserver: key too large")
	// ErrValueTooLarge rejects a value over the cluster's limit.
	ErrValueTooLarge = errors.New("kvserver: value too large")
	// ErrBadTTL rejects a negative TTL, or one over 100 years.
	ErrBadTTL = errors.New("kvserver: ttl must be between 0 and 100 years")
	// ErrUnknownOp rejects a Batch operation that is not a put, get or delete.
	ErrUnknownOp = errors.New("kvserver: batch operation must be a put, get, delete, incr or expire")
	// ErrBadWatch rejects a watch of no partition, or of a key and a prefix.
	ErrBadWatch = errors.New("kvserver: bad watch request")
	// ErrWatchCompacted refuses a watch from a seq whose writes this
	// server no longer keeps: re-read and watch from now.
	ErrWatchCompacted = errors.New("kvserver: watch history no longer kept")
	// ErrWatchLagged ends a watch that fell further behind the writes than
	// the server keeps: re-read and watch from now.
	ErrWatchLagged = errors.New("kvserver: watcher fell too far behind")
	// ErrBadCondition rejects a condition of unknown kind.
	ErrBadCondition = errors.New("kvserver: unknown condition kind")
	// ErrRequestIDReused refuses a write whose client id and request id
	// were already used for a different write: a retry must repeat its
	// write exactly.
	ErrRequestIDReused = errors.New("kvserver: request id already used for a different write")
	// ErrBadUser rejects a user name that is not 1-63 letters, digits, '.', '_' or '-'.
	ErrBadUser = errors.New("auth: user name must be 1-63 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
	// ErrBadPassword rejects an empty password or one over 72 bytes.
	ErrBadPassword = errors.New("auth: password must be 1-72 bytes")

	// ErrAuthDisabled refuses Login on a cluster without authentication.
	ErrAuthDisabled = errors.New("kvserver: authentication is not enabled on this cluster")

	// ErrBadCredentials is a wrong user name or password; which of the two
	// is not said.
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	// ErrInvalidToken is a missing, malformed, forged or revoked token.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired is a token past its expiry: log in again.
	ErrTokenExpired = errors.New("auth: token expired")

	// ErrMembersOnly refuses a method of the cluster members (replication,
	// transfer, digests) to a certificate that is not a member's.
	ErrMembersOnly = errors.New("kvserver: for cluster members only")

	// ErrForbiddenNamespace refuses a request header's namespace: one not
	// reserved for a front door, or asked for by a caller that is not a
	// cluster member.
	ErrForbiddenNamespace = errors.New("kvserver: namespace is only for the servers' front doors")

	// ErrRateLimited refuses a request over the user's request rate.
	ErrRateLimited = errors.New("kvserver: request rate limit")
	// ErrTooManyConnections refuses a call on a new connection while
	// max-connections connections have made calls.
	ErrTooManyConnections = errors.New("kvserver: connection limit reached")
	// ErrBadScan rejects a scan request: a malformed cursor, one naming a
	// partition the cluster does not have, or a prefix or cursor key over
	// the cluster's key limit.
	ErrBadScan = errors.New("kvserver: bad scan request")
	// ErrTooManyForwards refuses a request a server would forward while
	// max-forwards requests are being forwarded.
	ErrTooManyForwards = errors.New("kvserver: forwarding limit reached (max-forwards)")
	// ErrBatchStalled closes a Batch stream whose client does not read its answers.
	ErrBatchStalled = errors.New("kvserver: batch stream closed: the client does not read its answers")
	// ErrTooManyAttempts refuses a login during the back-off that follows
	// failed ones.
	ErrTooManyAttempts = errors.New("auth: too many failed logins")

	// ErrNotResponsible: the server does not serve the key in that role at
	// the request's epoch; the client refreshes its ring.
	ErrNotResponsible = errors.New("kvserver: not responsible for key")
	// ErrServerStopped: the server is stopping, or not in the ring yet.
	ErrServerStopped = errors.New("kvserver: server stopped")
	// ErrWriteLocked: the partition is briefly locked for writes (a status
	// of the protocol that kvserver does not send).
	ErrWriteLocked = errors.New("kvserver: partition locked for writes")
	// ErrServerNotReady: the partition cannot serve here for a moment (read
	// lease renewing, failover holdback).
	ErrServerNotReady = errors.New("kvserver: partition not ready here")
	// ErrNotInRing: the server has not seen a ring yet.
	ErrNotInRing = errors.New("kvserver: no ring yet")
	// ErrChainChanged: the partition's chain changed before the write
	// committed; its outcome is unknown to the server.
	ErrChainChanged = errors.New("kvserver: chain changed before the write committed")
	// ErrLoginBusy refuses a login while the server checks as many
	// passwords as it allows at once.
	ErrLoginBusy = errors.New("auth: the server is busy with logins; retry shortly")
	// ErrUsersNotLoaded: the server has not loaded the users and key yet.
	ErrUsersNotLoaded = errors.New("auth: users not loaded yet")
	// ErrUserUnknownYet is a valid token for a user record newer than the
	// server has seen.
	ErrUserUnknownYet = errors.New("auth: user not yet known to this server")
)

// row is one refusal: its sentinel, the gRPC code it travels with, and the
// Response status it is answered with instead, where it has one.
type row struct {
	err    error
	code   codes.Code
	status kvpb.Status
}

// table is every refusal. Unavailable ones are worth retrying elsewhere or
// later; the client does so within the caller's deadline.
var table = []row{
	{err: ErrEmptyKey, code: codes.InvalidArgument},
	{err: ErrKeyTooLarge, code: codes.InvalidArgument},
	{err: ErrValueTooLarge, code: codes.InvalidArgument},
	{err: ErrBadTTL, code: codes.InvalidArgument},
	{err: ErrUnknownOp, code: codes.InvalidArgument},
	{err: ErrBadCondition, code: codes.InvalidArgument},
	{err: ErrBadWatch, code: codes.InvalidArgument},
	{err: ErrWatchCompacted, code: codes.OutOfRange},
	{err: ErrWatchLagged, code: codes.ResourceExhausted},
	{err: ErrRequestIDReused, code: codes.InvalidArgument},
	{err: ErrBadScan, code: codes.InvalidArgument},
	{err: ErrBadUser, code: codes.InvalidArgument},
	{err: ErrBadPassword, code: codes.InvalidArgument},
	{err: ErrAuthDisabled, code: codes.Unimplemented},
	{err: ErrBadCredentials, code: codes.Unauthenticated},
	{err: ErrInvalidToken, code: codes.Unauthenticated},
	{err: ErrTokenExpired, code: codes.Unauthenticated},
	{err: ErrMembersOnly, code: codes.PermissionDenied},
	{err: ErrForbiddenNamespace, code: codes.PermissionDenied},
	{err: ErrRateLimited, code: codes.ResourceExhausted},
	{err: ErrTooManyConnections, code: codes.ResourceExhausted},
	{err: ErrTooManyForwards, code: codes.ResourceExhausted},
	{err: ErrBatchStalled, code: codes.ResourceExhausted},
	{err: ErrTooManyAttempts, code: codes.ResourceExhausted},
	{err: ErrNotResponsible, code: codes.FailedPrecondition, status: kvpb.Status_SERVER_NOT_RESPONSIBLE},
	{err: ErrServerStopped, code: codes.Unavailable, status: kvpb.Status_SERVER_STOPPED},
	{err: ErrWriteLocked, code: codes.Unavailable, status: kvpb.Status_SERVER_WRITE_LOCK},
	{err: ErrServerNotReady, code: codes.Unavailable, status: kvpb.Status_SERVER_NOT_READY},
	{err: ErrNotInRing, code: codes.Unavailable},
	{err: ErrChainChanged, code: codes.Unavailable},
	{err: ErrLoginBusy, code: codes.Unavailable},
	{err: ErrUsersNotLoaded, code: codes.Unavailable},
	{err: ErrUserUnknownYet, code: codes.Unavailable},
}
