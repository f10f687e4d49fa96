//go:build !simcanary_twoheads

package chainsm

const canaryTwoHeads = false
