//go:build !simcanary_noreorderprobe

package chainsm

const canaryNoReorderProbe = false
