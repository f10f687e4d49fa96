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
				errc <- toStatus(ErrStopped)
				return
			}
		}
	})
	if !recv { // stopping: q would never close
		return toStatus(ErrStopped)
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
			return toStatus(ErrStopped)
		}
		r.s.onBatches(group)
	}
	return <-errc
}

// Snapshot streams a partition to the learner the ring names (DESIGN §4):
// the tail's node decides, and the records are read from a pebble snapshot
// taken at that moment; writes go on meanwhile and reach the learner as
// updates after the snapshot's seq.
func (r *replService) Snapshot(req *kvpb.SnapshotRequest, stream kvpb.Replication_SnapshotServer) error {
	return r.s.core.serveSnapshot(req, stream)
}
