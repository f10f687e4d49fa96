// Package kvclient is the Go client of ecskv. A Client caches the ring
// metadata, sends each request straight to the server its partition's chain
// names (writes to the head, reads to the tail), refreshes the ring when a
// server answers SERVER_NOT_RESPONSIBLE or a connection dies, and retries
// within the caller's deadline. A write whose outcome cannot be known is
// reported as ErrUnknownOutcome, never as a silent success. Every refusal,
// the server's or the library's own check of the same limits, is a typed
// error of common/kverr's table, re-exported here and matched with
// errors.Is. New takes a plain Config.
//
// A Client is safe for concurrent use; Close releases its connections.
package kvclient
