package opclient

import "errors"

// The messages keep the "ecs:" prefix: they are what the ecs command
// prints.
var (
	// ErrNoCluster means etcd holds no ring for the cluster.
	ErrNoCluster = errors.New("ecs: no cluster found in etcd")
	// ErrUnknownServer means an admin request names a server the ring lacks.
	ErrUnknownServer = errors.New("ecs: unknown server")
	// ErrNoLeader means no ECS leads the cluster, so nobody would act on a request.
	ErrNoLeader = errors.New("ecs: no ECS is running")
	// ErrRefused means the leader ECS refused an admin request.
	ErrRefused = errors.New("ecs: request refused")
	// ErrTimeout means an admin command gave up waiting.
	ErrTimeout = errors.New("ecs: timed out")
	// ErrUserExists refuses to add a user that exists.
	ErrUserExists = errors.New("ecs: user exists")
	// ErrNoUser means the named user does not exist.
	ErrNoUser = errors.New("ecs: no such user")
)
