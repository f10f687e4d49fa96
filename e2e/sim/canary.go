package sim

import (
	"slices"

	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Canaries lists the simulation canaries built in (build tags
// simcanary_<name>, see kvserver/chainsm/canary.go): those of the chain
// state machine and those of the simulator's ECS and shell.
func Canaries() []string {
	out := chainsm.Canaries()
	for _, c := range []struct {
		on   bool
		name string
	}{
		{canaryTwoHeads, "twoheads"},
		{canaryUnsyncedHead, "unsyncedhead"},
		{canaryRetryWindow, "retrywindow"},
		{storage.CanaryCASNoValue, "casnovalue"},
		{storage.CanaryLeanOverwrite, "leanoverwrite"},
	} {
		if c.on && !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
	}
	slices.Sort(out)
	return out
}
