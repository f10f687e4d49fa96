// Package dht is the VoidPhone DHT API of a kvserver: an optional plain TCP
// listener (--dht-listen) that speaks the VoidPhone DHT messages
// (size:u16 | type:u16, then PUT 650, GET 651, SUCCESS 652, FAILURE 653)
// and stores their 32-byte keys in the reserved namespace Namespace of
// the cluster, through a Store (in a kvserver, the kvclient library, so
// any server answers any key).
//
// codec.go is the wire format: pure encode and decode functions, no I/O.
// server.go owns the listener and its connections.
//
// Concurrency: each connection has one reader goroutine, one writer
// goroutine and at most MaxInflight request goroutines. The reader owns
// the per-key ordering of its connection (a request waits for the
// connection's previous request on the same key, so a GET sees the PUTs
// sent before it); the writer sends the answers in request order. Every
// goroutine is joined by Stop.
package dht
