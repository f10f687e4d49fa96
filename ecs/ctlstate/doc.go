// Package ctlstate is the ECS leader's own record in etcd
// (/ecskv/<cluster>/ecs/state): the rebalancing plan, the servers being
// drained or removed, the unsynced members and the progress of the current
// round. The leader writes it in the same transaction as every ring it
// publishes (package ecs); `ecs status` and the status page read it with
// the ring from any host (package opclient). Load reads both at one
// revision.
//
// Concurrency: State and Progress are plain values; the controller
// goroutine owns the one it builds and publishes copies (Clone).
package ctlstate
