//go:build !simcanary_readinflight

package chainsm

const canaryReadInFlight = false
