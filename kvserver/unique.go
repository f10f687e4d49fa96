package kvserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecskv/ecskv/common/etcdkeys"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// ErrDuplicateID refuses to start a server whose id a running server of
// the cluster already has: two processes under one id would take turns in
// the membership record, and the ECS would fail the real one over again
// and again.
var ErrDuplicateID = errors.New("kvserver: server id already in use")

// checkUnique refuses to start while another live process holds this
// server's id. A membership record of another incarnation belongs to a
// live process only if that incarnation answers its health probe at the
// recorded address; a dead one's record (a restart after a crash, before
// its lease ran out) does not hold the start back. With etcd out of reach
// the server starts as before (it registers once etcd is back): a server
// must be able to start while the control plane is down.
func (s *Server) checkUnique() error {
	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Second)
	defer cancel()
	resp, err := s.etcd.Get(ctx, etcdkeys.Server(s.cfg.Cluster, s.cfg.ID))
	if err != nil {
		s.lg.Warn("cannot check that the server id is unused: etcd out of reach", zap.Error(err))
		return nil
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	m, err := etcdkeys.UnmarshalMember(resp.Kvs[0].Value)
	if err != nil || m.Incarnation == s.incarnation() || m.Addr == "" {
		return nil //nolint:nilerr // an unreadable record belongs to nobody alive
	}
	if !s.incarnationAlive(m.Addr, m.Incarnation) {
		return nil
	}
	return fmt.Errorf("%w: %s is served by a running process at %s (pid %d, started %s); stop it or choose another --id",
		ErrDuplicateID, s.cfg.ID, m.Addr, m.PID, time.UnixMilli(m.StartUnixMs).Format(time.RFC3339))
}

// incarnationAlive probes the health service of incarnation at addr.
// Anything but a SERVING answer within a second (refused, another process
// on the address, no answer) counts as gone.
func (s *Server) incarnationAlive(addr string, incarnation uint64) bool {
	conn, err := grpc.NewClient(addr, s.dialCreds)
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: etcdkeys.HealthService(incarnation)})
	if status.Code(err) == codes.NotFound {
		return false
	}
	return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
}
