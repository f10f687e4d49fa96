// Package opclient is the operator's side of an ecskv cluster, as the ecs
// command uses it: it talks only to etcd (and, for Check, to the servers'
// admin service), so it works from any host and whether or not an ECS runs.
//
//   - admin.go: Submit writes an admin request (`ecs add`, `remove`,
//     `replace`, `restart`) for the leader ECS, WaitResult waits for its
//     answer and WaitBalanced for the rebalancing it starts;
//   - status.go: ReadStatus assembles Status (`ecs status`, the status
//     page, /status) from the ring, the member records and the leader's
//     state (package ctlstate);
//   - check.go: Check compares every chain's replicas (`ecs check`);
//   - users.go: AddUser, RemoveUser, ListUsers (`ecs user`).
//
// The leader's side of the requests is in package ecs (requests.go).
//
// Concurrency: the functions are safe for concurrent use; each call owns
// what it reads and returns. Check queries the servers in parallel and
// joins those calls before it returns.
package opclient
