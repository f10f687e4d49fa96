// Package launcher runs the local kvserver processes of `ecs start -n N`
// and of `ecs add`, `replace` and `restart` on a leader that launched
// servers: server sI gets its data dir DIR/sI, its ports from the base
// port (ServerPorts), the cluster's TLS flags and, on a --secure cluster,
// a certificate it issues (certs.go). Its output is forwarded line by line
// with an "[sI]" prefix, and an unexpected exit is reported on Exited. The
// ECS (package ecs) owns one Launcher and stops it last.
//
// Concurrency: Launcher's methods are safe for concurrent use; mu guards
// the children. Every child has one watcher goroutine, and StopServer a
// kill timer; Stop joins them all.
package launcher
