//go:build simcanary_twoheads

package sim

// simcanary_twoheads, the ECS side (issue 12, bug 1; the chain side is in
// kvserver/chainsm): the old demotion skipped chains of fewer than two
// members, so a chain stripped down to an unsynced member was published
// with it as sole member.
const canaryTwoHeads = true

// canarySoleMember publishes a chain stripped to its unsynced (demoted)
// member with that member alone, marks ignored.
func canarySoleMember(keep []string, demoted string, unsynced func(string) bool) ([]string, string, func(string) bool) {
	if len(keep) == 0 && demoted != "" {
		return []string{demoted}, "", func(string) bool { return false }
	}
	return keep, demoted, unsynced
}
