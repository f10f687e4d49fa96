package kvserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/ecskv/ecskv/common/grpcopt"
	"github.com/ecskv/ecskv/common/kverr"
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/common/tlsutil"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// listen opens the service address behind the connection gate
// (conns.go), which bounds connections by whether they have made a call.
func (s *Server) listen() (net.Listener, error) {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kvserver: listen %s: %w", s.cfg.Listen, err)
	}
	s.gate = newConnGate(lis, gateLimits{
		maxAdmitted: s.cfg.MaxConnections, maxPending: s.cfg.MaxPendingConnections,
		handshake: s.cfg.HandshakeTimeout, firstRequest: s.cfg.FirstRequestTimeout, idle: s.cfg.IdleTimeout,
	}, s.metrics)
	for _, state := range []string{"pending", "admitted"} {
		s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ecskv_connections", Help: "Open connections: pending (no call yet) or admitted (counted against max-connections).",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			pending, admitted := s.gate.counts()
			if state == "pending" {
				return float64(pending)
			}
			return float64(admitted)
		}))
	}
	return s.gate, nil
}

// newGRPCServer builds the gRPC server with the configured limits and, when
// TLS is on, mutual TLS, and sets the credentials peers are dialed with.
func (s *Server) newGRPCServer() (*grpc.Server, error) {
	files := s.cfg.Files(s.cfg.ID)
	var err error
	if s.dialCreds, err = tlsutil.DialOption(files); err != nil {
		return nil, fmt.Errorf("kvserver: TLS: %w", err)
	}
	var serverTLS *tls.Config
	if files.Enabled() {
		if serverTLS, err = tlsutil.ServerConfig(files); err != nil {
			return nil, fmt.Errorf("kvserver: TLS: %w", err)
		}
		if s.replTLS, err = tlsutil.ClientConfig(files); err != nil {
			return nil, fmt.Errorf("kvserver: TLS: %w", err)
		}
		s.replTLS.NextProtos = []string{replALPN}
	}
	// The mux does the TLS handshake (to route by ALPN); gRPC takes the
	// connection with it done.
	s.mux = newReplMux(s, s.gate, serverTLS)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxMessageBytes), grpc.MaxSendMsgSize(s.cfg.MaxMessageBytes),
		grpc.MaxConcurrentStreams(s.cfg.MaxStreams),
		grpc.ChainUnaryInterceptor(s.unaryGuard),
		grpc.ChainStreamInterceptor(s.streamGuard),
		grpc.StatsHandler(s.gate),
		// The gate closes a connection at the handshake deadline and counts
		// it; gRPC's own deadline is only a backstop behind it.
		grpc.ConnectionTimeout(2 * s.cfg.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}), // 0: never
	}
	opts = append(opts, grpcopt.Server()...)
	if serverTLS != nil {
		opts = append(opts, grpc.Creds(tlsutil.NewHandshaken(serverTLS)))
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
				return toStatus(fmt.Errorf("%w: %s needs a member's certificate; %q (%s) is not one", kverr.ErrMembersOnly, method, name, role))
			}
		}
	}
	return nil
}

// unaryGuard and streamGuard run before every call: the connection gate
// admits the connection (or refuses the call over max-connections) and
// counts the call in progress, then member-only methods check the caller.
func (s *Server) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	end, err := s.gate.begin(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	defer end()
	if err := s.checkCaller(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	end, err := s.gate.begin(ss.Context())
	if err != nil {
		return toStatus(err)
	}
	defer end()
	if err := s.checkCaller(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
