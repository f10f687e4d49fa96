package kvserver

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/tlsutil"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// listen opens the service address, bounded to MaxConnections at once: a
// connection over the bound waits in the kernel's backlog until one closes.
func (s *Server) listen() (net.Listener, error) {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kvserver: listen %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.MaxConnections > 0 {
		lis = netutil.LimitListener(lis, s.cfg.MaxConnections)
	}
	return lis, nil
}

// newGRPCServer builds the gRPC server with the configured limits and, when
// TLS is on, mutual TLS, and sets the credentials peers are dialed with.
func (s *Server) newGRPCServer() (*grpc.Server, error) {
	files := s.cfg.Files(s.cfg.ID)
	creds, err := tlsutil.ServerCredentials(files)
	if err != nil {
		return nil, fmt.Errorf("kvserver: TLS: %w", err)
	}
	if s.dialCreds, err = tlsutil.DialOption(files); err != nil {
		return nil, fmt.Errorf("kvserver: TLS: %w", err)
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes), grpc.MaxSendMsgSize(s.cfg.MaxMessageBytes),
		grpc.MaxConcurrentStreams(s.cfg.MaxStreams),
		grpc.ChainUnaryInterceptor(s.unaryGuard),
		grpc.ChainStreamInterceptor(s.streamGuard),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	return grpc.NewServer(opts...), nil
}

// memberServices may be called only by cluster members: they carry every
// user's keys (replication, transfer) or digests of them.
var memberServices = []string{
	"/" + kvpb.Replication_ServiceDesc.ServiceName + "/",
	"/" + kvpb.Admin_ServiceDesc.ServiceName + "/",
}

// checkCaller refuses a member-only method to a caller whose certificate
// is not a member's. Without TLS every caller is trusted, as before.
func (s *Server) checkCaller(ctx context.Context, method string) error {
	if !s.cfg.TLS.Enabled() {
		return nil
	}
	for _, prefix := range memberServices {
		if strings.HasPrefix(method, prefix) {
			if role, name, _ := tlsutil.PeerRole(ctx); role != tlsutil.RoleMember {
				return status.Errorf(codes.PermissionDenied, "kvserver: %s is for cluster members; certificate %q (%s) is not one", method, name, role)
			}
		}
	}
	return nil
}

func (s *Server) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.checkCaller(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.checkCaller(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
