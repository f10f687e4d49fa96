//go:build simcanary_noprobe

package chainsm

// canaryNoProbe leaves out the probe of a restarted member (probe.go): a
// restarted head sequences from its own applied seq although its successor
// may hold entries it forwarded before its sync and lost in the crash.
const canaryNoProbe = true
