package kvserver

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/testutil"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/ecskv/ecskv/config"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// listServices asks cc's server for its services through server
// reflection (v1), as `grpcurl list` does.
func listServices(cc *grpc.ClientConn) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel() // ends the stream
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	// A stream the server has ended fails Send with io.EOF; Recv then
	// returns the server's status.
	if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

// TestReflection: reflection lists every service; its call passes the
// connection gate like any other (it admits the connection, which then
// outlives the first-request deadline, and is refused over
// max-connections); --reflection=false turns it off.
func TestReflection(t *testing.T) {
	const handshake, first = 200 * time.Millisecond, 500 * time.Millisecond
	c, addr := newGateCluster(t, func(cfg *config.KVServer) {
		cfg.HandshakeTimeout, cfg.FirstRequestTimeout, cfg.MaxConnections = handshake, first, 1
	})
	cc := dialGRPC(t, addr)
	names, err := listServices(cc)
	require.NoError(t, err)
	require.Subset(t, names, []string{"ecskv.v1.KV", "ecskv.v1.Replication", "ecskv.v1.Admin",
		"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"})

	t.Run("admits the connection", func(t *testing.T) {
		testutil.Eventually(t, 5*time.Second, 5*time.Millisecond, func() bool {
			pending, admitted := c.srv("s1").gate.counts()
			return pending == 0 && admitted == 1
		}, "the connection is admitted")
		waitReady(t, cc)
		ctx, cancel := context.WithTimeout(context.Background(), first+handshake)
		defer cancel()
		require.False(t, cc.WaitForStateChange(ctx, connectivity.Ready), "an admitted connection outlives the deadlines")
		require.Zero(t, closedFor(c, closeFirstRequest))
	})
	t.Run("refused over max-connections", func(t *testing.T) {
		_, err := listServices(dialGRPC(t, addr))
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		require.ErrorIs(t, kverr.FromStatus(err), kverr.ErrTooManyConnections)
	})
	t.Run("off", func(t *testing.T) {
		_, addr := newGateCluster(t, func(cfg *config.KVServer) { cfg.Reflection = false })
		_, err := listServices(dialGRPC(t, addr))
		require.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		require.NoError(t, getRingWithin(dialGRPC(t, addr), 5*time.Second), "the server serves without it")
	})
}

// TestReflectionTLS: on a secure cluster reflection needs a certificate
// of the cluster's CA, as every call does; a client's is enough.
func TestReflectionTLS(t *testing.T) {
	c, dir := newTLSCluster(t, 1, nil)
	cc, err := grpc.NewClient(c.node("s1").addr, dialWith(t, tlsutil.DirFiles(dir, tlsutil.ClientName)))
	require.NoError(t, err)
	defer cc.Close()
	names, err := listServices(cc)
	require.NoError(t, err)
	require.Contains(t, names, "ecskv.v1.KV")

	_, err = listServices(dialGRPC(t, c.node("s1").addr)) // plaintext
	require.Error(t, err)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}
