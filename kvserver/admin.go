package kvserver

import (
	"context"
	"slices"

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
		for p := 0; p < s.parts.count(); p++ {
			parts = append(parts, uint32(p))
		}
	}
	resp := &kvpb.DigestResponse{Id: s.cfg.ID, Epoch: s.appliedEpoch()}
	for _, p := range parts {
		if int(p) >= s.parts.count() {
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

func (s *Server) digest(p int, always bool) (*kvpb.PartitionDigest, bool, error) {
	ps := s.parts.get(p)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	member := len(ps.members) > 0 && ps.catchup == nil && slices.Contains(ps.members, s.cfg.ID)
	if !member && !always {
		return nil, false, nil
	}
	if err := s.loadLocked(ps, p); err != nil {
		return nil, false, err
	}
	h, err := s.store.Checksum(p)
	if err != nil {
		return nil, false, err
	}
	st, err := s.store.Stats(p)
	if err != nil {
		return nil, false, err
	}
	return &kvpb.PartitionDigest{
		Partition: uint32(p), AppliedSeq: ps.applied, Hash: h, Keys: uint64(st.Keys), ChainVersion: ps.version,
	}, true, nil
}
