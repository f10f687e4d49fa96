// Package chainstore carries out the chain state machine's storage
// operations (package chainsm) on a storage.Store, and drains the machine's
// Ready for a shell. It is the one implementation the kvserver and the
// simulator share, so a run of the simulator exercises the same storage
// code, on pebble, as a server does.
package chainstore

import (
	"errors"
	"fmt"

	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// maxGroupBytes bounds the data of one group: a catch-up applies many
// entries in one step, and one batch of them all would hold them in memory
// twice over.
const maxGroupBytes = 4 << 20

// Groups splits one Ready's storage operations into the groups that commit
// together, in order: a drop or an ingest alone, every run of others in one
// batch of at most about maxGroupBytes.
func Groups(ops []chainsm.StorageOp) [][]chainsm.StorageOp {
	var out [][]chainsm.StorageOp
	start, size := 0, 0
	cut := func(end int) {
		if end > start {
			out = append(out, ops[start:end:end])
		}
		start, size = end, 0
	}
	for i, op := range ops {
		if op.Kind == chainsm.StDrop || op.Kind == chainsm.StIngest {
			cut(i)
			cut(i + 1)
			continue
		}
		if size >= maxGroupBytes {
			cut(i)
		}
		size += opBytes(op)
	}
	cut(len(ops))
	return out
}

// opBytes estimates what op adds to a batch.
func opBytes(op chainsm.StorageOp) int {
	n := 64
	if op.Entry != nil {
		for _, o := range op.Entry.Ops {
			n += 2*(len(o.NS)+len(o.Key)) + len(o.Value) + 32
		}
	}
	return n + 16*len(op.IDs)
}

// ApplyGroup carries out one group of Groups in one unsynced pebble batch;
// the shell syncs when the node asks (Ready.Sync). A failed operation fails
// the group, which writes nothing. nowMs is the wall clock a head apply
// judges liveness by. The outcomes are those of head applies (NeedStatus),
// by index in ops, and the prior records asked for (NeedPrior).
func ApplyGroup(st *storage.Store, ops []chainsm.StorageOp, nowMs int64) ([]storage.Outcome, error) {
	if len(ops) == 1 && (ops[0].Kind == chainsm.StDrop || ops[0].Kind == chainsm.StIngest) {
		return []storage.Outcome{{}}, applyAlone(st, ops[0])
	}
	w := st.NewWriter()
	defer w.Close()
	sts := make([]storage.Outcome, len(ops))
	for i, op := range ops {
		var err error
		switch op.Kind {
		case chainsm.StApply:
			var prior *storage.Record
			if op.NeedPrior {
				o := op.Entry.Ops[0]
				if rec, ok := w.Cached(op.Part, o.NS, o.Key); ok {
					prior = &rec
				}
			}
			sts[i], err = w.ApplyEntry(op.Part, ToLogEntry(op.Entry), op.NeedStatus, nowMs)
			sts[i].Prior = prior
		case chainsm.StTruncate:
			err = w.TruncateLog(op.Part, op.Seq)
		case chainsm.StForget:
			err = w.ForgetDedup(op.Part, toDedupIDs(op.IDs))
		case chainsm.StVersion:
			err = w.SetVersion(op.Part, op.Ver, op.Epoch, op.Unsynced)
		default:
			err = fmt.Errorf("chainstore: storage op %d cannot share a batch", op.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("chainstore: %v of partition %d: %w", op.Kind, op.Part, err)
		}
	}
	return sts, w.Commit()
}

// applyAlone carries out a drop or an ingest, which commit by themselves.
func applyAlone(st *storage.Store, op chainsm.StorageOp) error {
	switch op.Kind {
	case chainsm.StDrop:
		return st.DropPartition(op.Part)
	case chainsm.StIngest:
		// The records came chunk by chunk (IngestChunk); this sets the
		// partition's state after them.
		return st.FinishSnapshot(op.Part, op.Seq, toStoreDedup(op.Dedup))
	}
	return fmt.Errorf("chainstore: unknown storage op %d", op.Kind)
}

// Recover loads what storage kept of every partition into a new node.
func Recover(st *storage.Store, n *chainsm.Node) error {
	parts, err := st.RecoverPartitions()
	if err != nil {
		return fmt.Errorf("recover partitions: %w", err)
	}
	for _, ps := range parts {
		rec := chainsm.Recovered{Applied: ps.Applied, Ver: ps.Ver, Epoch: ps.Epoch, Unsynced: ps.Unsynced,
			Truncated: ps.Truncated, Dedup: FromStoreDedup(ps.Dedup)}
		for _, e := range ps.Log {
			rec.Log = append(rec.Log, fromLogEntry(e))
		}
		if err := n.Recover(ps.Partition, rec); err != nil {
			return err
		}
	}
	return nil
}

// ErrNotLearning refuses snapshot records for a partition the node no
// longer learns at that chain version.
var ErrNotLearning = errors.New("no longer learning this partition")

// IngestChunk writes one chunk of a snapshot of partition part at chain
// version ver while the node still waits for it: a learner that moved on
// must not get records after its partition was dropped. The first chunk
// clears what an earlier attempt left. The caller holds the node.
func IngestChunk(st *storage.Store, n *chainsm.Node, part int, ver uint64, entries []storage.Entry, first bool) error {
	if !n.Learning(part, ver) {
		return ErrNotLearning
	}
	if first {
		if err := st.DropPartition(part); err != nil {
			return err
		}
	}
	return st.Ingest(part, entries, 0)
}

// ToLogEntry is an entry as the log keeps it.
func ToLogEntry(e *chainsm.Entry) storage.LogEntry {
	return storage.LogEntry{Seq: e.Seq, Ops: e.Ops, Client: e.ID.Client, ClientSeq: e.ID.Seq, Status: e.Status,
		Result: e.Res, WallMs: e.WallMs, Sum: e.Sum}
}

func fromLogEntry(e storage.LogEntry) *chainsm.Entry {
	return &chainsm.Entry{Seq: e.Seq, Ops: e.Ops, ID: chainsm.ReqID{Client: e.Client, Seq: e.ClientSeq}, Status: e.Status,
		Res: e.Result, WallMs: e.WallMs, Sum: e.Sum}
}

func toStoreDedup(ds []chainsm.DedupRecord) []storage.DedupRecord {
	out := make([]storage.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = storage.DedupRecord{ID: DedupID(d.ID), Seq: d.Seq, Status: d.Status, WallMs: d.WallMs, Sum: d.Sum, Result: d.Res}
	}
	return out
}

// FromStoreDedup converts storage's dedup records to the node's.
func FromStoreDedup(ds []storage.DedupRecord) []chainsm.DedupRecord {
	out := make([]chainsm.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = chainsm.DedupRecord{ID: chainsm.ReqID{Client: d.ID.Client, Seq: d.ID.Seq}, Seq: d.Seq, Status: d.Status,
			WallMs: d.WallMs, Sum: d.Sum, Res: d.Result}
	}
	return out
}

// DedupID is a request id as storage keys it.
func DedupID(id chainsm.ReqID) storage.DedupID {
	return storage.DedupID{Client: id.Client, Seq: id.Seq}
}

func toDedupIDs(ids []chainsm.ReqID) []storage.DedupID {
	out := make([]storage.DedupID, len(ids))
	for i, id := range ids {
		out[i] = DedupID(id)
	}
	return out
}

// Read reads a key the node allowed this member to serve now. A record
// near its expiry, which another server's clock may still see live, is not
// reported either way (chainsm.ErrNotReady; the client retries): a key one
// read reported missing is never returned by a later read, whichever
// member serves it, with clocks within skewMs of true time.
// With prior (chainsm.Node.Read) the record is that one, not storage's.
func Read(st *storage.Store, p int, ns, key []byte, prior *storage.Record, nowMs, skewMs int64) (storage.Record, bool, error) {
	var rec storage.Record
	if prior != nil {
		rec = *prior
	} else {
		r, ok, err := st.Get(p, ns, key, 0)
		if err != nil || !ok {
			return storage.Record{}, false, err
		}
		rec = r
	}
	if rec.Seq == 0 {
		return storage.Record{}, false, nil
	}
	switch live, expired := chainsm.ExpiryVerdict(nowMs, rec.ExpiryMs, skewMs); {
	case live:
		return rec, true, nil
	case expired:
		return storage.Record{}, false, nil
	}
	return storage.Record{}, false, fmt.Errorf("%w: key at its expiry", chainsm.ErrNotReady)
}
