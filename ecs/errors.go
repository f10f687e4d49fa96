package ecs

import "errors"

var (
	// ErrDataDirLocked means another ecs runs on the same data directory.
	ErrDataDirLocked = errors.New("ecs: data directory is in use by another ecs")
	// ErrPortInUse means a port the cluster needs is taken.
	ErrPortInUse = errors.New("ecs: port in use")
	// ErrNotLeader means this ECS lost leadership while publishing.
	ErrNotLeader = errors.New("ecs: not the leader")
	// ErrRingConflict means the ring changed under a publish (another writer).
	ErrRingConflict = errors.New("ecs: ring changed concurrently")
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
	// ErrAuthMismatch means the cluster was created with authentication on
	// and this ECS was started with it off, or the reverse.
	ErrAuthMismatch = errors.New("ecs: authentication is fixed at cluster creation")
	// ErrUserExists refuses to add a user that exists.
	ErrUserExists = errors.New("ecs: user exists")
	// ErrNoUser means the named user does not exist.
	ErrNoUser = errors.New("ecs: no such user")
	// ErrLaunch means a local kvserver could not be launched.
	ErrLaunch = errors.New("ecs: cannot launch kvserver")
	// ErrServerIDLive refuses a start whose server ids running processes hold.
	ErrServerIDLive = errors.New("ecs: server id already in use")
)
