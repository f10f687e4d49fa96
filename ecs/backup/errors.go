package backup

import "errors"

// The messages keep the "ecs:" prefix: they are what the ecs command
// prints.
var (
	// ErrCorrupt means a backup's files do not match its manifest.
	ErrCorrupt = errors.New("ecs: backup is corrupt")
	// ErrNotEmpty refuses to restore into a cluster that holds keys.
	ErrNotEmpty = errors.New("ecs: target cluster holds keys")
	// ErrIncompatible refuses a target cluster whose limits or
	// authentication do not suit the backup.
	ErrIncompatible = errors.New("ecs: backup does not fit the target cluster")
	// ErrExists refuses to write a backup over another.
	ErrExists = errors.New("ecs: backup exists")
)
