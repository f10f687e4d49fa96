//go:build !simcanary_dedupevict

package chainsm

const canaryDedupCap = 0

func (d *dedupTable) canaryEvict() {}
