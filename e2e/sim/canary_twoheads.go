//go:build simcanary_twoheads

package sim

// simcanary_twoheads, the ECS side (issue 12, bug 1; the chain side is in
// kvserver/chainsm): the old demotion skipped chains of fewer than two
// members, so a chain stripped down to an unsynced member was published
// with it as sole member (marks ignored).
const canaryTwoHeads = true
