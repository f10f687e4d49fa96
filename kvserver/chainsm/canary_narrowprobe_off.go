//go:build !simcanary_narrowprobe

package chainsm

const canaryNarrowProbe = false
