package kvserver

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// snapshotChunkBytes sizes the chunks of a partition snapshot.
const snapshotChunkBytes = 256 << 10

// replService adapts the Replication gRPC service.
type replService struct {
	kvpb.UnimplementedReplicationServer
	s *Server
}

// Replicate consumes one peer's stream until it ends or this server stops.
// Recv runs in a tracked goroutine so that a peer's idle stream does not
// hold GracefulStop for its whole timeout: the handler returns at Stop, which
// ends the stream and so that Recv; Stop waits for the goroutine (goAttach)
// before it closes the store.
func (r *replService) Replicate(stream kvpb.Replication_ReplicateServer) error {
	errc := make(chan error, 1)
	r.s.goAttach(func() { errc <- r.consume(stream) })
	select {
	case err := <-errc:
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&kvpb.ReplStreamEnd{})
		}
		return err
	case <-r.s.stopc:
		return status.Error(codes.Unavailable, "kvserver: stopping")
	}
}

// maxGroup bounds how many received messages share one WAL sync.
const maxGroup = 64

// consume hands received messages to the apply loop through a small queue,
// so that while one group is being synced the next messages gather and are
// applied together under a single fsync (group commit across messages).
func (r *replService) consume(stream kvpb.Replication_ReplicateServer) error {
	q := make(chan *kvpb.ReplBatch, maxGroup)
	errc := make(chan error, 1)
	recv := r.s.goAttach(func() {
		defer close(q)
		for {
			b, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case q <- b:
			case <-r.s.stopc:
				errc <- status.Error(codes.Unavailable, "kvserver: stopping")
				return
			}
		}
	})
	if !recv { // stopping: q would never close
		return status.Error(codes.Unavailable, "kvserver: stopping")
	}
	group := make([]*kvpb.ReplBatch, 0, maxGroup)
	for b := range q {
		group = append(group[:0], b)
	drain:
		for len(group) < maxGroup {
			select {
			case more, ok := <-q:
				if !ok {
					break drain
				}
				group = append(group, more)
			default:
				break drain
			}
		}
		if r.s.stopped.Load() {
			return status.Error(codes.Unavailable, "kvserver: stopping")
		}
		r.s.onBatches(group)
	}
	return <-errc
}

// Snapshot streams a partition to the learner the ring names (DESIGN §4).
// Writes go on meanwhile: the learner gets every update after the snapshot.
func (r *replService) Snapshot(req *kvpb.SnapshotRequest, stream kvpb.Replication_SnapshotServer) error {
	s, p := r.s, int(req.Partition)
	if p >= s.parts.count() {
		return status.Errorf(codes.InvalidArgument, "kvserver: no partition %d", p)
	}
	ps := s.parts.get(p)
	ps.mu.Lock()
	if ps.succ != "" || ps.learner != req.From || len(ps.members) == 0 {
		ps.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "kvserver: %s is not the learner of partition %d here", req.From, p)
	}
	// Forward every update after what is applied now; the snapshot taken
	// just after holds at least this much, and the learner skips the rest.
	ps.feeding, ps.learnFrom, ps.recent = true, ps.applied, nil
	ps.mu.Unlock()

	chunk := &kvpb.SnapshotChunk{}
	size := 0
	flush := func() error {
		s.limiter.wait(s.ctx, size)
		err := stream.Send(chunk)
		chunk, size = &kvpb.SnapshotChunk{}, 0
		return err
	}
	applied, err := s.store.ScanSnapshot(p, func(ns, key []byte, rec storage.Record) error {
		// ns, key and the value alias the scan's iterator: copy what the chunk keeps.
		chunk.Records = append(chunk.Records, &kvpb.Op{
			Ns: bytes.Clone(ns), Key: bytes.Clone(key), Value: bytes.Clone(rec.Value), ExpiryMs: rec.ExpiryMs,
		})
		chunk.Seqs = append(chunk.Seqs, rec.Seq)
		if size += len(key) + len(rec.Value) + 32; size >= snapshotChunkBytes {
			return flush()
		}
		return nil
	})
	if err != nil {
		return status.Errorf(codes.Internal, "kvserver: snapshot of partition %d: %v", p, err)
	}
	chunk.AppliedSeq, chunk.Last = applied, true
	return flush()
}

// Lease grants the caller a read lease when both hold the same epoch and
// this server has heard from etcd recently (DESIGN §4 read leases).
func (r *replService) Lease(_ context.Context, req *kvpb.LeaseRequest) (*kvpb.LeaseResponse, error) {
	return r.s.grantLease(req), nil
}
