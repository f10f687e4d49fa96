//go:build !simcanary_ttlskew

package chainsm

const canaryTTLSkew = false
