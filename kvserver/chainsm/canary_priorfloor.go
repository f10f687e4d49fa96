//go:build simcanary_priorfloor

package chainsm

// canaryPriorFloor lets a tail answer a read with the record before any
// write in flight there, even one an earlier tail committed before this
// one was promoted.
const canaryPriorFloor = true
