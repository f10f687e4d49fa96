//go:build !simcanary_restart

package chainsm

const canaryRestart = false
