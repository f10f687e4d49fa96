//go:build !simcanary_unsyncedhead

package sim

const canaryUnsyncedHead = false

func canaryMarks(unsynced func(string) bool) func(string) bool { return unsynced }
