package opclient

import (
	"testing"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/stretchr/testify/require"
)

// TestStatusOrderAndLag: servers come sorted naturally (s2 before s10),
// each with how many epochs its report is behind, joining ones included.
func TestStatusOrderAndLag(t *testing.T) {
	r := &ringmeta.Ring{Epoch: 9, Partitions: 1, Replicas: 2,
		Servers: []ringmeta.Server{{ID: "s10", State: ringmeta.StateActive}, {ID: "s2", State: ringmeta.StateActive}, {ID: "s1", State: ringmeta.StateDown}},
		Chains:  []ringmeta.Chain{{Members: []string{"s10", "s2"}}}}
	st := statusOf(r, map[string]etcdkeys.Member{
		"s10": {ID: "s10", Epoch: 9, PID: 1}, "s2": {ID: "s2", Epoch: 6, PID: 2}, "s3": {ID: "s3", Epoch: 8, PID: 3},
	})
	var ids []string
	lag := map[string]uint64{}
	for _, s := range st.Servers {
		ids = append(ids, s.ID)
		lag[s.ID] = s.Lag
	}
	require.Equal(t, []string{"s1", "s2", "s3", "s10"}, ids)
	require.Equal(t, map[string]uint64{"s1": 0, "s2": 3, "s3": 1, "s10": 0}, lag)
	require.Negative(t, CompareIDs("ecs", "s1"))
	require.Negative(t, CompareIDs("a9", "b1"))
}
