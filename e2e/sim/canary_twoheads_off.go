//go:build !simcanary_twoheads

package sim

const canaryTwoHeads = false
