//go:build !simcanary_snapunsynced

package chainsm

const canarySnapUnsynced = false
