//go:build !simcanary_leanoverwrite

package storage

// CanaryLeanOverwrite is a simulation canary (kvserver/chainsm/canary.go); off.
const CanaryLeanOverwrite = false
