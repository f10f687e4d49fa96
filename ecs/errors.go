package ecs

import (
	"errors"

	"github.com/ecskv/ecskv/ecs/launcher"
)

var (
	// ErrDataDirLocked means another ecs runs on the same data directory.
	ErrDataDirLocked = errors.New("ecs: data directory is in use by another ecs")
	// ErrPortInUse means a port the cluster needs is taken. It is
	// launcher.ErrPortInUse, which the launcher's port checks return.
	ErrPortInUse = launcher.ErrPortInUse
	// ErrNotLeader means this ECS lost leadership while publishing.
	ErrNotLeader = errors.New("ecs: not the leader")
	// ErrRingConflict means the ring changed under a publish (another writer).
	ErrRingConflict = errors.New("ecs: ring changed concurrently")
	// ErrAuthMismatch means the cluster was created with authentication on
	// and this ECS was started with it off, or the reverse.
	ErrAuthMismatch = errors.New("ecs: authentication is fixed at cluster creation")
	// ErrServerIDLive refuses a start whose server ids running processes hold.
	ErrServerIDLive = errors.New("ecs: server id already in use")
)
