package chainstore

import (
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Shell is what drives a node: it carries out the outputs of each Ready.
// Drain calls it in a fixed order per Ready: every group of storage
// operations (then Advance), the sync request, snapshots, answers,
// messages, reports, committed entries.
type Shell interface {
	// Apply carries out one group of storage operations (Groups), in one
	// batch (normally with ApplyGroup), and returns the outcomes of head
	// applies by index. An error means storage cannot keep the protocol's
	// promises: the shell stops serving.
	Apply(ops []chainsm.StorageOp) ([]storage.Outcome, error)
	// Sync asks for a WAL sync; the shell calls Node.SyncDone(id) once
	// everything applied before this call is durable.
	Sync(id uint64)
	// Snapshot captures a partition for a learner as storage holds it now.
	Snapshot(ss chainsm.SnapshotSend)
	// Answer completes a client call.
	Answer(a chainsm.Answer)
	// Send sends a peer message.
	Send(m chainsm.Msg)
	// Report carries a report to etcd.
	Report(r chainsm.Report)
	// Committed hands over entries that became committed (for watchers).
	Committed(c chainsm.Committed)
}

// Drain carries out everything the node asks for until it has no Ready.
// It returns the first storage error (after which the shell must stop).
func Drain(n *chainsm.Node, sh Shell) error {
	var first error
	for n.HasReady() {
		rd := n.Ready()
		var sts []storage.Outcome
		for _, g := range Groups(rd.Storage) {
			var gst []storage.Outcome
			if first == nil { // after a failure nothing more is written
				gst, first = sh.Apply(g)
			}
			for i, op := range g {
				if op.NeedStatus || op.NeedPrior {
					var st storage.Outcome
					if i < len(gst) {
						st = gst[i]
					}
					sts = append(sts, st)
				}
			}
		}
		n.Advance(sts)
		if rd.Sync != 0 {
			sh.Sync(rd.Sync)
		}
		for _, ss := range rd.Snapshots {
			sh.Snapshot(ss)
		}
		for _, a := range rd.Answers {
			sh.Answer(a)
		}
		for _, m := range rd.Msgs {
			sh.Send(m)
		}
		for _, r := range rd.Reports {
			sh.Report(r)
		}
		for _, c := range rd.Committed {
			sh.Committed(c)
		}
	}
	return first
}
