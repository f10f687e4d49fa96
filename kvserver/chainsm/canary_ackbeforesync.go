//go:build simcanary_ackbeforesync

package chainsm

// simcanary_ackbeforesync puts back forwarding before the member's own sync
// (issue 12, bug 7): a successor, and the tail's commit point, can get
// ahead of what its predecessor holds durably.
const canaryAckBeforeSync = true
