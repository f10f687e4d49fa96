package kvserver

import (
	"context"

	"github.com/ecskv/ecskv/common/kvpb"
)

// adminService serves the ECS and operators (`ecs check`).
type adminService struct {
	kvpb.UnimplementedAdminServer
	s *Server
}

// Digest returns applied_seq and a content hash per partition, taken under
// the partition's lock so the two agree. With no partitions listed it
// covers every partition this server is a member of.
func (a *adminService) Digest(_ context.Context, req *kvpb.DigestRequest) (*kvpb.DigestResponse, error) {
	s := a.s
	parts := req.Partitions
	if len(parts) == 0 {
		for p := 0; p < s.partitionCount(); p++ {
			parts = append(parts, uint32(p))
		}
	}
	resp := &kvpb.DigestResponse{Id: s.cfg.ID, Epoch: s.appliedEpoch()}
	for _, p := range parts {
		if int(p) >= s.partitionCount() {
			continue
		}
		d, ok, err := s.digest(int(p), len(req.Partitions) > 0)
		if err != nil {
			return nil, toStatus(err)
		}
		if ok {
			resp.Partitions = append(resp.Partitions, d)
		}
	}
	return resp, nil
}

// digest reads applied_seq and the content hash under the core's lock,
// so the two agree.
func (s *Server) digest(p int, always bool) (*kvpb.PartitionDigest, bool, error) {
	c := s.core
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.node.Info(p)
	if !in.Member && !always {
		return nil, false, nil
	}
	_ = ok
	h, err := s.store.Checksum(p)
	if err != nil {
		return nil, false, err
	}
	st, err := s.store.Stats(p)
	if err != nil {
		return nil, false, err
	}
	return &kvpb.PartitionDigest{
		Partition: uint32(p), AppliedSeq: in.Applied, Hash: h, Keys: uint64(st.Keys), ChainVersion: in.Ver,
	}, true, nil
}

// partitionCount is P of the ring this server follows (0 before one).
func (s *Server) partitionCount() int {
	if r := s.ring.Load(); r != nil {
		return r.Partitions
	}
	return 0
}
