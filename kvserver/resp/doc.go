// Package resp is the Redis protocol front door of a kvserver: an optional
// plain TCP listener (--resp-listen) that speaks RESP2 and RESP3, so
// redis-cli, redis-benchmark and Redis client libraries (plain and cluster
// mode) reach the cluster. Its commands are the string subset of Redis 7
// that a key-value store can serve (GET, SET, DEL, INCR, EXPIRE, SCAN, ...)
// plus the connection, introspection and CLUSTER commands clients probe
// with, with Redis's error texts word for word.
//
// reader.go parses requests (multibulk and inline) under size bounds;
// reply.go writes answers in the connection's protocol version; the
// cmd_*.go files are the commands; server.go owns the listener and the
// connections. The cluster is behind Cluster and Backend (backend.go):
// client.go implements them with the kvclient library, tests with a map.
//
// Concurrency: each connection has one goroutine, which reads a command,
// runs it and buffers its answer, and flushes when no further command is
// already buffered (so a pipeline gets its answers in one write). Commands
// of one connection run in order, as in Redis; a multi-key command fans its
// keys out. Every goroutine is joined by Stop.
package resp
