package sim

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/chainstore"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// disk is one server's storage: the kvserver's own store (package
// storage, pebble) on a crashable in-memory filesystem, written through
// the same chainstore code as a server's. Every storage operation is one
// unsynced batch; a sync makes every batch before it durable.
//
// A power loss keeps exactly the synced state (CrashClone with no unsynced
// data, the only replayable setting) plus a seeded prefix of the batches
// written since the last sync, re-applied: WAL recovery keeps whole
// batches in order, so that is what a torn WAL tail leaves.
type disk struct {
	id      string
	fs      *vfs.MemFS
	st      *storage.Store
	pending []unsyncedBatch // batches since the last sync
	rotated bool            // a WAL rotation synced every batch before it
}

// unsyncedBatch is an unsynced batch, as the group of operations that
// wrote it.
type unsyncedBatch struct {
	ops    []chainsm.StorageOp
	wallMs int64
}

func newDisk(id string) (*disk, error) { return openDisk(id, vfs.NewCrashableMem()) }

func openDisk(id string, fs *vfs.MemFS) (*disk, error) {
	d := &disk{id: id, fs: fs}
	st, err := storage.Open(id, storage.Options{
		FS: fs, Sync: true, CacheEntries: 256,
		Tune: func(o *pebble.Options) {
			// Background compactions change no data and would only
			// cost time; a rotation syncs the old WAL (inside the
			// write that caused it, so at a replayable point).
			o.DisableAutomaticCompactions = true
			o.MemTableSize = 256 << 10
			// Without compactions L0 only grows: pebble's write stall
			// at L0StopWritesThreshold would wait forever for one.
			o.L0StopWritesThreshold = math.MaxInt32
			o.EventListener = &pebble.EventListener{WALCreated: func(pebble.WALCreateInfo) { d.rotated = true }}
		},
	})
	if err != nil {
		return nil, err
	}
	d.st = st
	return d, nil
}

// apply runs a group of operations on the store in one batch and
// remembers it until the next sync. It returns the statuses head applies
// computed.
func (d *disk) apply(ops []chainsm.StorageOp, wallMs int64) ([]storage.Outcome, error) {
	d.rotated = false
	sts, err := chainstore.ApplyGroup(d.st, ops, wallMs)
	if err != nil {
		return sts, err
	}
	drop := len(ops) == 1 && ops[0].Kind == chainsm.StDrop
	if d.rotated || drop { // a drop commits synced
		d.pending = d.pending[:0]
	}
	if !drop {
		cp := make([]chainsm.StorageOp, len(ops))
		for i, op := range ops {
			if op.Entry != nil {
				e := *op.Entry
				op.Entry = &e
			}
			cp[i] = op
		}
		d.pending = append(d.pending, unsyncedBatch{cp, wallMs})
	}
	return sts, nil
}

// ingest writes snapshot records (synced commits) as the kvserver's
// transfer does.
func (d *disk) ingest(n *chainsm.Node, part int, ver uint64, entries []storage.Entry) error {
	if err := chainstore.IngestChunk(d.st, n, part, ver, entries, true); err != nil {
		return err
	}
	d.pending = d.pending[:0]
	return nil
}

// durableApplied is partition p's applied seq as a power loss now would
// keep it at the least (the state of the last sync).
func (d *disk) durableApplied(p int) uint64 {
	for _, u := range d.pending {
		for _, op := range u.ops {
			if op.Part == p && op.Kind == chainsm.StApply {
				return op.Entry.Seq - 1
			}
			if op.Part == p && op.Kind == chainsm.StIngest {
				return 0 // conservatively: the snapshot is not durable yet
			}
		}
	}
	applied, _ := d.st.AppliedSeq(p)
	return applied
}

// sync makes every batch written so far durable.
func (d *disk) sync() error {
	if err := d.st.SyncWAL(); err != nil {
		return err
	}
	d.pending = d.pending[:0]
	return nil
}

// crash returns the disk as a power loss leaves it: the synced state plus
// the first keep batches written since the last sync.
func (d *disk) crash(keep int) (*disk, error) {
	img := d.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_ = d.st.Close() // nothing it does reaches img
	nd, err := openDisk(d.id, img)
	if err != nil {
		return nil, err
	}
	for _, u := range d.pending[:keep] {
		if _, err := chainstore.ApplyGroup(nd.st, u.ops, u.wallMs); err != nil {
			return nil, fmt.Errorf("re-apply a batch of %d: %w", len(u.ops), err)
		}
	}
	return nd, nd.sync()
}

func (d *disk) close() { _ = d.st.Close() }

// dedupSeq returns the seq partition p's dedup table holds for id.
func (d *disk) dedupSeq(p int, id chainsm.ReqID) (uint64, bool) {
	r, ok, err := d.st.Dedup(p, chainstore.DedupID(id))
	if err != nil || !ok {
		return 0, false
	}
	return r.Seq, true
}

// snapshot copies partition p's records for a learner.
func (d *disk) snapshot(p int) ([]storage.Entry, error) {
	sn := d.st.NewSnapshot()
	defer sn.Close()
	var out []storage.Entry
	err := sn.Scan(p, func(ns, key []byte, r storage.Record) error {
		r.Value = bytes.Clone(r.Value)
		out = append(out, storage.Entry{NS: bytes.Clone(ns), Key: bytes.Clone(key), Record: r})
		return nil
	})
	return out, err
}

// digest hashes partition p's applied seq and records.
func (d *disk) digest(p int) ([32]byte, uint64, error) {
	applied, err := d.st.AppliedSeq(p)
	if err != nil {
		return [32]byte{}, 0, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d|", applied)
	err = d.st.Scan(p, func(ns, key []byte, r storage.Record) error {
		fmt.Fprintf(h, "%q/%q=%d/%d/%q|", ns, key, r.Seq, r.ExpiryMs, r.Value)
		return nil
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, applied, err
}
