package framework

import "testing"

// StatusAt runs `ecs status --json` with the ecs binary at ecsBin against a
// cluster the framework did not start (the containers of `make multihost`),
// found through the etcd endpoints (comma-separated).
func StatusAt(t testing.TB, ecsBin, endpoints string, tlsArgs ...string) (StatusJSON, error) {
	t.Helper()
	return statusAt(t, ecsBin, endpoints, tlsArgs)
}

// CheckAt runs `ecs check --json` like Cluster.Check, against a cluster the
// framework did not start.
func CheckAt(t testing.TB, ecsBin, endpoints string, tlsArgs ...string) CheckJSON {
	t.Helper()
	return checkAt(t, ecsBin, endpoints, tlsArgs)
}
