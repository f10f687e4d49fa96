//go:build !simcanary_tailsynced

package chainsm

const canaryTailSynced = false
