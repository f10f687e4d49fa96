package kvserver

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestRollingUpgradeReplicates: during a rolling upgrade a chain holds
// servers of a version before the replication transport, which serve
// only gRPC and replicate over it. A server of this version replicates to
// them over their gRPC Replicate stream and to the others over the
// transport, and every write commits and reaches every member, with TLS
// and without.
func TestRollingUpgradeReplicates(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls-%v", withTLS), func(t *testing.T) {
			var c *tcluster
			if withTLS {
				dir := certsDir(t)
				c = newClusterWith(t, 0, func(cfg *config.KVServer) {
					cfg.CertsDir = dir
					cfg.EtcdEndpoints = []string{"http://" + testEtcdEndpoints[0]}
				}, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ECSName)))
			} else {
				c = newClusterWith(t, 0, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
			}
			c.grpcReplOnly = map[string]bool{"s2": true}
			for _, id := range []string{"s1", "s2", "s3"} {
				c.addNode(id)
			}
			r := c.publishInitial("s1", "s2", "s3")
			c.waitEpoch(r.Epoch, "s1", "s2", "s3")

			w := c.client()
			// A write commits once synced on every member, s2 included.
			for i := range 40 {
				w.mustPut(t, fmt.Sprintf("k%d", i), "v")
			}
			c.waitConverged([]string{"s1", "s2", "s3"}, allPartitions(), 20*time.Second)

			// Every server sent to every other: s2 is reached over gRPC,
			// the others over the transport.
			for _, from := range []string{"s1", "s3"} {
				require.True(t, c.srv(from).peers.get("s2").reachedViaGRPC(), "%s to s2", from)
			}
			require.False(t, c.srv("s1").peers.get("s3").reachedViaGRPC(), "s1 to s3")
			require.False(t, c.srv("s3").peers.get("s1").reachedViaGRPC(), "s3 to s1")
		})
	}
}
