// Package kvclient is the Go client of ecskv. A Client caches the ring
// metadata, sends each request straight to the server its partition's chain
// names (writes to the head, reads to the tail), refreshes the ring when a
// server answers SERVER_NOT_RESPONSIBLE or a connection dies, and retries
// within the caller's deadline. A write whose outcome cannot be known is
// reported as ErrUnknownOutcome, never as a silent success.
//
// A Client is safe for concurrent use; Close releases its connections.
package kvclient
