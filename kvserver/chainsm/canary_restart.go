//go:build simcanary_restart

package chainsm

// canaryRestart puts back the old recovery (issue 12, bug 2): in-flight
// lists and the dedup table lived only in memory, so a restarted member
// kept nothing but its applied seq, took all of it as committed and had
// nothing to resend to its successor.
const canaryRestart = true
