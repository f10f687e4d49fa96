package kvserver

import (
	"context"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestHealthAnswersForOwnIncarnation: a server answers SERVING for the
// health service of the incarnation in its member record, and NOT_FOUND for
// any other, so the ECS's probes of a dead incarnation fail even when the
// restarted server already listens on the same address.
func TestHealthAnswersForOwnIncarnation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	incarnation := func() uint64 {
		var m etcdkeys.Member
		testutil.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
			resp, err := c.cli.Get(context.Background(), etcdkeys.Server(c.name, "s1"))
			if err != nil || len(resp.Kvs) != 1 {
				return false
			}
			m, err = etcdkeys.UnmarshalMember(resp.Kvs[0].Value)
			return err == nil && m.Incarnation == c.srv("s1").incarnation()
		}, "s1 registered")
		return m.Incarnation
	}
	check := func(inc uint64) (healthpb.HealthCheckResponse_ServingStatus, codes.Code) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(c.conn("s1")).Check(ctx,
			&healthpb.HealthCheckRequest{Service: etcdkeys.HealthService(inc)})
		return resp.GetStatus(), status.Code(err)
	}

	first := incarnation()
	st, code := check(first)
	require.Equal(t, codes.OK, code)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
	_, code = check(first + 1)
	require.Equal(t, codes.NotFound, code, "another incarnation's service")

	c.stopNode("s1")
	c.restartNode("s1")
	second := incarnation()
	require.Greater(t, second, first)
	_, code = check(first)
	require.Equal(t, codes.NotFound, code, "the restarted server does not answer for the old incarnation")
	st, code = check(second)
	require.Equal(t, codes.OK, code)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, st)
}
