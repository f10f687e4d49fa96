//go:build !simcanary_noprobe

package chainsm

const canaryNoProbe = false
