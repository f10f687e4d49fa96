package dht

import "errors"

var (
	// ErrMalformed marks a message that breaks the wire format; the server
	// closes the connection that sent it.
	ErrMalformed = errors.New("dht: malformed message")
	// ErrUnknownType marks a type that is not one of the four messages.
	ErrUnknownType = errors.New("dht: unknown message type")
	// ErrTooLarge refuses to encode a message over MaxMessageSize.
	ErrTooLarge = errors.New("dht: message too large")
	// ErrNotRequest marks a well-formed message a client may not send
	// (SUCCESS or FAILURE).
	ErrNotRequest = errors.New("dht: not a request")
	// ErrValueTooLarge marks a PUT whose value is over the cluster's limit.
	ErrValueTooLarge = errors.New("dht: value too large")
)
