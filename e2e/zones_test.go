//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/ringmeta"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/config"
	"github.com/ecskv/ecskv/e2e/framework"
	"github.com/ecskv/ecskv/kvclient"
	"github.com/stretchr/testify/require"
)

// zoneOf places six servers in three zones, two each, on a line: the
// client's zone "near" at 0, "mid" at 5, "far" at 50.
var zoneOf = map[string]struct {
	zone   string
	coords string
}{
	"s1": {"near", "0,0"}, "s2": {"near", "0,0"},
	"s3": {"mid", "5,0"}, "s4": {"mid", "5,0"},
	"s5": {"far", "50,0"}, "s6": {"far", "50,0"},
}

// farDelay is added to every chunk between the client and a far server,
// each way.
const farDelay = 5 * time.Millisecond

// TestZones reads, from a client in zone near, keys whose chain's tail is
// in the far zone, which is farDelay away each way: nearest reads must be
// served by the chain's member in near, tail reads by the far tail. A
// client in no zone with coordinates reads from the member closest to
// them. Once the cluster is balanced every chain spans the three zones,
// though servers may join after the first layout. The latencies of both
// read modes are logged, not asserted.
func TestZones(t *testing.T) {
	args := map[string][]string{}
	for id, z := range zoneOf {
		args[id] = []string{"--zone", z.zone, "--coords", z.coords}
	}
	// The far zone's servers join one by one after the first layout, which
	// spans near and mid only: rebalancing must bring far into every chain.
	late := []string{"s5", "s6"}
	c := framework.NewChaosCluster(t, framework.ChaosConfig{Servers: len(zoneOf), Replicas: 3, Partitions: 64, ECSes: 1, ServerArgs: args, Late: late})
	for id, z := range zoneOf {
		if z.zone == "far" {
			c.Net().Set(framework.ClientNode, id, framework.Fault{Kind: framework.Delay, Delay: farDelay})
		}
	}
	for _, id := range late {
		c.StartServer(t, id)
		waitRebalanced(t, c, id)
	}
	// Wait for the last move, so that the chains read below stay as they are.
	require.NoError(t, c.WaitHealthy(t, 60*time.Second))
	cli := zonedClient(t, c, func(cfg *config.Client) { cfg.Zone = "near" })
	ring := settledRing(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var keys []string // keys whose tail is far, on chains that span the zones
	for i := 0; len(keys) < 40 && i < 10000; i++ {
		k := fmt.Sprintf("zones-%d", i)
		ch := ring.Chain(ring.PartitionOf(nil, []byte(k)))
		if zoneOf[ch.Tail()].zone == "far" && len(chainZones(ch)) == 3 {
			_, err := cli.Put(ctx, k, []byte("v"))
			require.NoError(t, err)
			keys = append(keys, k)
		}
	}
	require.Len(t, keys, 40, "keys on chains that span the zones with a far tail")
	const rounds = 10
	nearest := readZoned(ctx, t, cli, keys, rounds, "near", "near", kvclient.WithReadMode(kvclient.Nearest))
	tail := readZoned(ctx, t, cli, keys, rounds, "", "far", kvclient.WithReadMode(kvclient.Linearizable))
	t.Logf("zones: reads of keys with a far tail (+%v each way): %d nearest p50 %v p99 %v, %d tail p50 %v p99 %v",
		farDelay, len(nearest), pct(nearest, 0.50), pct(nearest, 0.99), len(tail), pct(tail, 0.50), pct(tail, 0.99))

	// No member shares this client's zone: the closest by coordinates
	// (mid, at distance 1) serves, not near (at 4) however fast it is.
	byCoords := zonedClient(t, c, func(cfg *config.Client) { cfg.Zone, cfg.Coords = "elsewhere", []float64{4, 0} })
	readZoned(ctx, t, byCoords, keys, 2, "mid", "mid", kvclient.WithReadMode(kvclient.Nearest))

	// ecs status and the status page show each server's zone.
	res := framework.Run(t, framework.RunOptions{}, binPath(t, framework.ECSBin), "status", "--etcd-endpoints", c.EtcdEndpoint())
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "ZONE")
	page := httpGet(t, c.StatusURL())
	for id, z := range zoneOf {
		row := regexp.MustCompile(`(?m)^` + id + `\s.*$`).FindString(res.Stdout)
		require.Contains(t, strings.Fields(row), z.zone, "ecs status row of %s: %q", id, row)
		require.Contains(t, page, `<td>`+z.zone+`</td>`, "status page")
	}
}

// waitRebalanced waits until server id is active in the ring, holds
// replicas and no move is left, and logs how many it holds.
func waitRebalanced(t *testing.T, c *framework.ChaosCluster, id string) {
	t.Helper()
	why, held := "no status", 0
	ok := testutil.WaitUntil(60*time.Second, 200*time.Millisecond, func() bool {
		st, err := c.StatusE(t)
		if err != nil {
			why = err.Error()
			return false
		}
		i := slices.IndexFunc(st.Servers, func(s framework.ServerStatus) bool { return s.ID == id })
		if i < 0 || st.Servers[i].State != "active" || st.Servers[i].Replicas() == 0 {
			why = id + " not active in the chains"
			return false
		}
		held = st.Servers[i].Replicas()
		var conv bool
		conv, why = st.Converged()
		return conv
	})
	require.True(t, ok, "%s not rebalanced in: %s", id, why)
	t.Logf("zones: %s joined late, holds %d replicas", id, held)
}

func zonedClient(t *testing.T, c *framework.ChaosCluster, place func(*config.Client)) *kvclient.Client {
	t.Helper()
	cfg := c.ClientConfig()
	place(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := kvclient.New(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// settledRing waits for a ring with every server, each with the zone and
// coordinates it published, in chains without learners that each span the
// three zones: placement puts a chain's members in distinct zones, and
// rebalancing keeps them so when servers join after the first layout.
func settledRing(t *testing.T, cli *kvclient.Client) *ringmeta.Ring {
	t.Helper()
	var ring *ringmeta.Ring
	why := "no ring yet"
	settled := testutil.WaitUntil(30*time.Second, 100*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := cli.RefreshRing(ctx)
		if err != nil || len(r.Chains) == 0 || len(r.Servers) != len(zoneOf) {
			why = fmt.Sprintf("ring not complete (err %v)", err)
			return false
		}
		if why = ringUnsettled(r); why != "" {
			return false
		}
		ring = r
		return true
	})
	require.True(t, settled, "ring not settled in 30s: %s", why)
	t.Logf("zones: all %d chains span the three zones", len(ring.Chains))
	return ring
}

// ringUnsettled says why r is not yet the settled ring, or "".
func ringUnsettled(r *ringmeta.Ring) string {
	for _, s := range r.Servers {
		if s.Zone != zoneOf[s.ID].zone || len(s.Coords) != 2 {
			return fmt.Sprintf("server %s has zone %q coords %v", s.ID, s.Zone, s.Coords)
		}
	}
	inChains, spread := map[string]bool{}, 0
	for p, ch := range r.Chains {
		if ch.Learner != "" {
			return fmt.Sprintf("partition %d has a learner", p)
		}
		for _, id := range ch.Members {
			inChains[id] = true
		}
		if len(chainZones(ch)) == 3 {
			spread++
		}
	}
	if len(inChains) != len(zoneOf) {
		return fmt.Sprintf("%d of %d servers in the chains", len(inChains), len(zoneOf))
	}
	if spread != len(r.Chains) {
		return fmt.Sprintf("%d of %d chains span the three zones", spread, len(r.Chains))
	}
	return ""
}

// chainZones returns the zones of ch's members, each once.
func chainZones(ch ringmeta.Chain) []string {
	var zones []string
	for _, id := range ch.Members {
		zones = append(zones, zoneOf[id].zone)
	}
	slices.Sort(zones)
	return slices.Compact(zones)
}

// readZoned reads every key rounds times, one read at a time, asserting that
// the member of the key's chain in zone served each (the tail when zone is
// ""), and returns the latencies of reads served from want, the zone the
// test means to measure. A server of a machine this loaded can miss its
// lease and be failed over meanwhile: a read during a ring change is not
// checked, and reads of chains that have changed are checked against the
// new chain but not timed unless served from want.
func readZoned(ctx context.Context, t *testing.T, cli *kvclient.Client, keys []string, rounds int, zone, want string, mode kvclient.OpOption) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for r := 0; r < rounds; r++ {
		for _, k := range keys {
			var served string
			before := cli.Ring()
			start := time.Now()
			v, err := cli.Get(ctx, k, mode, kvclient.WithServedBy(&served))
			d := time.Since(start)
			require.NoError(t, err)
			require.Equal(t, "v", string(v))
			ring := cli.Ring()
			ch := ring.Chain(ring.PartitionOf(nil, []byte(k)))
			if ring.Epoch != before.Epoch || len(chainZones(ch)) != 3 {
				t.Logf("zones: ring epoch %d -> %d, key %s on chain %v served by %s: not checked", before.Epoch, ring.Epoch, k, ch.Members, served)
				continue
			}
			if zone == "" {
				require.Equal(t, ch.Tail(), served, "key %s on chain %v", k, ch.Members)
			} else {
				require.Contains(t, ch.Members, served, "key %s", k)
				require.Equal(t, zone, zoneOf[served].zone, "key %s on chain %v was served by %s", k, ch.Members, served)
			}
			if zoneOf[served].zone == want {
				ds = append(ds, d)
			}
		}
	}
	require.Greater(t, len(ds), rounds*len(keys)/2, "most reads should be served from zone %s", want)
	return ds
}
