//go:build !simcanary_twoheads

package sim

const canaryTwoHeads = false

func canarySoleMember(keep []string, demoted string, unsynced func(string) bool) ([]string, string, func(string) bool) {
	return keep, demoted, unsynced
}
