package launcher

import "errors"

// The messages keep the "ecs:" prefix: the ecs command prints them.

var (
	// ErrPortInUse means a port the cluster needs is taken.
	ErrPortInUse = errors.New("ecs: port in use")
	// ErrLaunch means a local kvserver could not be launched.
	ErrLaunch = errors.New("ecs: cannot launch kvserver")
)
