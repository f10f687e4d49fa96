package kvserver

import (
	"errors"
	"io"

	"github.com/ecskv/ecskv/common/kvpb"
)

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
		return toStatus(ErrStopped)
	}
}

// consume steps each received message as it arrives. The sender puts
// everything it has queued into one message and the sync loop groups WAL
// syncs by itself, so a queue and a second goroutine here, as there were,
// only added a goroutine handoff to every hop of every write (measured in
// the same window, alternating: writes 5% faster with 50 clients, 10% with
// 256, and 4% less CPU per write without them).
func (r *replService) consume(stream kvpb.Replication_ReplicateServer) error {
	for {
		b, err := stream.Recv()
		if err != nil {
			return err
		}
		if r.s.stopped.Load() {
			return toStatus(ErrStopped)
		}
		r.s.onBatches([]*kvpb.ReplBatch{b})
	}
}

// Snapshot streams a partition to the learner the ring names (DESIGN §4):
// the tail's node decides, and the records are read from a pebble snapshot
// taken at that moment; writes go on meanwhile and reach the learner as
// updates after the snapshot's seq.
func (r *replService) Snapshot(req *kvpb.SnapshotRequest, stream kvpb.Replication_SnapshotServer) error {
	return r.s.core.serveSnapshot(req, stream)
}
