// Package grpcopt holds the gRPC transport options every ecskv connection
// shares.
package grpcopt

import "google.golang.org/grpc"

// Flow-control windows, set statically. gRPC's default window starts at
// 64 KiB and is tuned by BDP estimation: the receiver pings on incoming
// data and answers each ping and each quarter-window consumed with a frame
// of its own. Under a stream of small messages (chain updates, batch
// results) those control frames cost a write and a read on each side about
// as often as the messages themselves (a loaded server made 1.67 reads and
// 1.35 writes per replicated write with them, 1.15 and 1.0 without). A
// static window turns estimation off, and at these sizes window updates
// come every 256 KiB per stream. The stream window also bounds what a
// client can push ahead of a server that stopped reading (the Batch
// stream's bounds rely on it), so it stays far below BDP's 16 MiB cap.
const (
	StreamWindow = 1 << 20
	ConnWindow   = 8 << 20
)

// Server is the window options of a gRPC server.
func Server() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(StreamWindow), grpc.InitialConnWindowSize(ConnWindow)}
}

// Dial is the window options of a gRPC client connection.
func Dial() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(StreamWindow), grpc.WithInitialConnWindowSize(ConnWindow)}
}
