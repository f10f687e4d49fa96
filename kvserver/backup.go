package kvserver

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backup (`ecs backup`): the tail of a partition streams the records of a
// storage snapshot in which every write is committed, so a backup holds
// the partition exactly as it stood at one seq.
//
// The tail's storage may hold writes applied but not yet committed (not
// yet synced here). Rather than leave their keys out, the tail takes the
// snapshot at once, under the node's lock and its read gate, then waits
// until its commit point reaches the snapshot's applied_seq: from then on
// everything in the snapshot is committed, and nothing after that seq is
// in it. A chain change meanwhile fails the call; the caller asks the new
// tail.

// backupCommitWait bounds the wait for the tail's commit point to reach
// the snapshot (a sync here: milliseconds unless the chain is failing).
const backupCommitWait = 5 * time.Second

// backupPoll paces that wait.
const backupPoll = 2 * time.Millisecond

// backupSnap is a committed snapshot of one partition.
type backupSnap struct {
	snap    *storage.Snapshot
	seq     uint64
	ver     uint64
	takenMs int64
}

// Backup streams partition req.Partition from this server, its tail.
func (a *adminService) Backup(req *kvpb.BackupRequest, stream kvpb.Admin_BackupServer) error {
	bs, err := a.s.core.backupSnapshot(stream.Context(), int(req.Partition), req.ChainVersion)
	if err != nil {
		return err
	}
	defer bs.snap.Close()
	return a.s.sendBackup(stream, int(req.Partition), bs)
}

// backupSnapshot takes partition p's snapshot as its tail at chain version
// ver (0: any) and waits until all of it is committed.
func (c *core) backupSnapshot(ctx context.Context, p int, ver uint64) (*backupSnap, error) {
	if p >= c.s.partitionCount() {
		return nil, status.Errorf(codes.InvalidArgument, "kvserver: no partition %d (the cluster has %d)", p, c.s.partitionCount())
	}
	c.mu.Lock()
	_, err := c.node.Scan(c.now(), p, chainsm.ScanReq{Ver: ver}) // the tail's read gate
	in, _ := c.node.Info(p)
	var snap *storage.Snapshot
	if err == nil {
		snap = c.s.store.NewSnapshot()
	}
	c.mu.Unlock()
	switch {
	case errors.Is(err, chainsm.ErrNotResponsible):
		return nil, status.Errorf(codes.FailedPrecondition, "kvserver: %s is not the tail of partition %d at chain version %d", c.s.cfg.ID, p, ver)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "kvserver: partition %d cannot be read here yet: %v", p, err)
	}
	bs := &backupSnap{snap: snap, ver: in.Ver, takenMs: nowMs()}
	// The storage may trail the node, never lead it: the snapshot's own
	// applied_seq says what it holds.
	if bs.seq, err = snap.AppliedSeq(p); err == nil {
		err = c.awaitCommitted(ctx, p, bs.ver, bs.seq)
	}
	if err != nil {
		snap.Close()
		return nil, err
	}
	return bs, nil
}

// awaitCommitted waits until this server, still the tail of p at chain
// version ver, has committed seq.
func (c *core) awaitCommitted(ctx context.Context, p int, ver, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, backupCommitWait)
	defer cancel()
	for {
		c.mu.Lock()
		in, ok := c.node.Info(p)
		c.mu.Unlock()
		switch {
		case !ok || !in.Tail || in.Ver != ver:
			return status.Errorf(codes.Unavailable, "kvserver: partition %d changed chains during its backup; retry at its tail", p)
		case in.Committed >= seq:
			return nil
		}
		select {
		case <-ctx.Done():
			return status.Errorf(codes.Unavailable, "kvserver: partition %d did not commit seq %d within %v: %v", p, seq, backupCommitWait, ctx.Err())
		case <-c.s.stopc:
			return toStatus(ErrStopped)
		case <-time.After(backupPoll):
		}
	}
}

// sendBackup streams the snapshot's live records in chunks.
func (s *Server) sendBackup(stream kvpb.Admin_BackupServer, p int, bs *backupSnap) error {
	first := func() *kvpb.BackupChunk {
		return &kvpb.BackupChunk{Seq: bs.seq, ChainVersion: bs.ver, TakenUnixMs: bs.takenMs}
	}
	chunk, size := first(), 0
	err := bs.snap.Scan(p, func(ns, key []byte, rec storage.Record) error {
		if rec.Expired(bs.takenMs) {
			return nil // reads as missing already; the sweeper deletes it
		}
		chunk.Records = append(chunk.Records, &kvpb.Op{Ns: bytes.Clone(ns), Key: bytes.Clone(key), Value: bytes.Clone(rec.Value), ExpiryMs: rec.ExpiryMs})
		if size += len(ns) + len(key) + len(rec.Value) + 32; size < snapshotChunkBytes {
			return nil
		}
		err := stream.Send(chunk)
		chunk, size = first(), 0
		return err
	})
	if err != nil {
		return status.Errorf(codes.Internal, "kvserver: backup of partition %d: %v", p, err)
	}
	chunk.Last = true
	return stream.Send(chunk)
}

// Restore writes req's records at the head of their partition.
func (a *adminService) Restore(ctx context.Context, req *kvpb.RestoreRequest) (*kvpb.RestoreResponse, error) {
	return a.s.restore(ctx, req)
}

// restore checks that every record belongs to the partition and fits the
// cluster's limits, then proposes them as one write: they commit together,
// down the chain like any put. Puts of absolute values and expiries, so a
// retry after an unknown outcome writes the same again.
func (s *Server) restore(ctx context.Context, req *kvpb.RestoreRequest) (*kvpb.RestoreResponse, error) {
	cur, resp := s.serving()
	if resp != nil {
		return restoreRefused(resp), nil
	}
	p := int(req.Partition)
	if p >= len(cur.Chains) {
		return nil, status.Errorf(codes.InvalidArgument, "kvserver: no partition %d (the cluster has %d)", p, len(cur.Chains))
	}
	ops, err := restoreOps(cur, p, req.Records)
	if err != nil {
		return nil, err
	}
	rt, resp := s.locatePart(cur, &kvpb.RequestHeader{ChainVersion: req.ChainVersion}, p, true)
	if resp != nil {
		return restoreRefused(resp), nil
	}
	a, err := s.core.propose(ctx, p, chainsm.Proposal{Ver: rt.chain.Version, Ops: ops, WallMs: nowMs()})
	switch {
	case errors.Is(err, chainsm.ErrNotResponsible):
		return restoreRefused(notResponsible(cur, "partition is changing chains here")), nil
	case errors.Is(err, chainsm.ErrNotReady):
		return &kvpb.RestoreResponse{Status: kvpb.Status_SERVER_NOT_READY, Epoch: cur.Epoch, Message: "partition is syncing"}, nil
	case err != nil:
		return nil, toStatus(err)
	}
	return &kvpb.RestoreResponse{Status: a.Status, Epoch: cur.Epoch}, nil
}

// restoreBytes bounds a restore request's records (key, value and
// namespace bytes, plus restoreOpOverhead each): one write down the chain
// must fit a replication message as the largest put does.
func restoreBytes(cur *currentRing) int {
	return cur.Limits.MaxKeyBytes + cur.Limits.MaxValueBytes
}

// restoreOpOverhead is what the client and the server count per record
// besides its bytes: more than its protobuf framing.
const restoreOpOverhead = 32

// restoreOps turns records into puts, refusing any that is not of
// partition p, over the limits, or of a malformed namespace.
func restoreOps(cur *currentRing, p int, recs []*kvpb.Op) ([]storage.Op, error) {
	ops := make([]storage.Op, len(recs))
	size := 0
	for i, r := range recs {
		if err := checkKV(cur.Limits, r.Key, r.Value, 0); err != nil {
			return nil, toStatus(err)
		}
		if err := storage.ValidateNamespace(r.Ns); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "kvserver: restore record %d: %v", i, err)
		}
		if q := cur.PartitionOf(r.Ns, r.Key); q != p {
			return nil, status.Errorf(codes.InvalidArgument, "kvserver: restore record %d is of partition %d, not %d", i, q, p)
		}
		if r.ExpiryMs < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "kvserver: restore record %d: negative expiry", i)
		}
		size += len(r.Ns) + len(r.Key) + len(r.Value) + restoreOpOverhead
		ops[i] = storage.Op{Kind: storage.OpPut, NS: r.Ns, Key: r.Key, Value: r.Value, ExpiryMs: r.ExpiryMs}
	}
	if max := restoreBytes(cur); size > max && len(recs) > 1 {
		return nil, status.Errorf(codes.InvalidArgument, "kvserver: restore request of %d bytes, limit is %d", size, max)
	}
	return ops, nil
}

func restoreRefused(r *kvpb.Response) *kvpb.RestoreResponse {
	return &kvpb.RestoreResponse{Status: r.Status, Epoch: r.Epoch, Message: r.Message}
}
