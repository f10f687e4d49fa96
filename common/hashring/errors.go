package hashring

import "errors"

var (
	// ErrNoServers is returned when there is no server to place replicas on.
	ErrNoServers = errors.New("hashring: no servers")
	// ErrBadPartitions is returned for a partition count that is not a power
	// of two in 1..MaxPartitions.
	ErrBadPartitions = errors.New("hashring: partitions must be a power of two in 1..32768")
	// ErrBadReplicas is returned for a replication factor below 1.
	ErrBadReplicas = errors.New("hashring: replicas must be at least 1")
	// ErrDuplicateServer is returned when two servers share an id.
	ErrDuplicateServer = errors.New("hashring: duplicate server id")
	// ErrEmptyServerID is returned for a server without an id.
	ErrEmptyServerID = errors.New("hashring: empty server id")
)
