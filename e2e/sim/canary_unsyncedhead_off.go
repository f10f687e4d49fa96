//go:build !simcanary_unsyncedhead

package sim

const canaryUnsyncedHead = false
