package etcdmodel

import "errors"

var (
	// ErrLeaseNotFound is returned for a lease that was never granted, has
	// expired or was revoked (etcd lease.ErrLeaseNotFound).
	ErrLeaseNotFound = errors.New("etcdmodel: requested lease not found")
	// ErrCompacted is returned when a revision is below the compacted one;
	// a watch learns it through an EventCompacted event.
	ErrCompacted = errors.New("etcdmodel: required revision has been compacted")
	// ErrFutureRev is returned when compacting above the current revision.
	ErrFutureRev = errors.New("etcdmodel: required revision is a future revision")
	// ErrDuplicateKey is returned for a txn branch that writes a key twice
	// (two puts, or a put inside a delete of the same branch).
	ErrDuplicateKey = errors.New("etcdmodel: duplicate key given in txn request")
	// ErrEmptyKey is returned for a put, delete, get or compare without a key.
	ErrEmptyKey = errors.New("etcdmodel: key is not provided")
	// ErrInvariant is wrapped by Check when the model's state is inconsistent.
	ErrInvariant = errors.New("etcdmodel: invariant violated")
)
