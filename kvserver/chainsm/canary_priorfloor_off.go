//go:build !simcanary_priorfloor

package chainsm

const canaryPriorFloor = false
