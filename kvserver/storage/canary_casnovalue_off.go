//go:build !simcanary_casnovalue

package storage

// CanaryCASNoValue is a simulation canary (kvserver/chainsm/canary.go); off.
const CanaryCASNoValue = false
