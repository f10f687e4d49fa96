//go:build !simcanary_dupholdback

package chainsm

const canaryDupHoldback = false
