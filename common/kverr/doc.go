// Package kverr is the one table of the refusals a kvserver answers with,
// shared by the server and the client library (DESIGN §7, after etcd's
// rpctypes). Each row is a sentinel error, the gRPC code it travels with
// and, for the refusals a server answers inside a Response, its
// kvpb.Status.
//
// The server turns a domain error that wraps a row's sentinel into a gRPC
// status error with ToStatus: the row's code, and a message that begins
// with the sentinel's message. The client turns what it receives back into
// an *Error with FromStatus (or FromResponse): it keeps the server's
// message and matches, with errors.Is, the row's sentinel and the class of
// its code (ErrInvalidArgument, ErrUnauthenticated, ErrPermissionDenied,
// ErrResourceExhausted). A status that is in no row keeps its code and
// message, and matches the class of its code if that has one.
//
// The Batch stream carries a result's code and message only, so a row is
// found from those two: the code, and the longest sentinel message the
// status message begins with.
//
// Everything here is immutable and safe for concurrent use.
package kverr
