package chainsm

// Simulation canaries (SIMULATION.md §6). A build tag simcanary_<name>
// puts back the old logic of one bug at the one place the
// protocol consults it, so that the simulator can show it finds the bug;
// e2e/sim/testdata/canaries.txt names the seed or scenario that catches
// each. Every hook is a constant (canary_<name>.go under the tag,
// canary_<name>_off.go otherwise), false in every other build, so
// production code compiles the hooks away.

// Canaries lists the canaries built into this package (none in
// production).
func Canaries() []string {
	var out []string
	for _, c := range []struct {
		on   bool
		name string
	}{
		{canaryRestart, "restart"},
		{canaryDedupCap > 0, "dedupevict"},
		{canaryTTLSkew, "ttlskew"},
		{canaryGrantEpoch(2, 1) != 2, "leaseorder"},
		{canaryDupHoldback, "dupholdback"},
		{canaryTwoHeads, "twoheads"},
		{canaryNoProbe, "noprobe"},
		{canaryTailSynced, "tailsynced"},
		{canarySnapUnsynced, "snapunsynced"},
		{canaryNoReorderProbe, "noreorderprobe"},
		{canaryNarrowProbe, "narrowprobe"},
		{canaryReportOnce, "reportonce"},
		{canaryReadInFlight, "readinflight"},
		{canaryPriorFloor, "priorfloor"},
	} {
		if c.on {
			out = append(out, c.name)
		}
	}
	return out
}
