// Package testutil holds the helpers every ecskv test shares: polling for a
// condition (Eventually, WaitUntil), loopback ports that are never handed
// out twice in one process (FreePort, FreeAddr, FreePortRange,
// ReservePorts), a single-member embedded etcd (StartEtcd, RunEtcd), and
// an attacker that holds silent connections open (HoldSilent).
//
// Everything here is safe for concurrent use by parallel tests. The e2e
// framework imports it too, so it must not import any other ecskv package
// but common/tlsutil.
package testutil
