package ringmeta

import "errors"

var (
	// ErrInvalid wraps every validation failure of a decoded ring.
	ErrInvalid = errors.New("ringmeta: invalid ring")
	// ErrUnknownServer is returned when a chain names a server the ring lacks.
	ErrUnknownServer = errors.New("ringmeta: unknown server")
)
