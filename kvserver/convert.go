package kvserver

import (
	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Wire conversions of the chain protocol's messages (kvserver/chainsm) to
// the Replication service's protobuf and back.

func toPBOps(ops []storage.Op) []*kvpb.Op {
	out := make([]*kvpb.Op, len(ops))
	for i, o := range ops {
		k := kvpb.OpKind_OP_PUT
		if o.Kind == storage.OpDelete {
			k = kvpb.OpKind_OP_DELETE
		}
		out[i] = &kvpb.Op{Kind: k, Ns: o.NS, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out
}

func fromPBOps(ops []*kvpb.Op) []storage.Op {
	out := make([]storage.Op, len(ops))
	for i, o := range ops {
		k := storage.OpPut
		if o.Kind == kvpb.OpKind_OP_DELETE {
			k = storage.OpDelete
		}
		out[i] = storage.Op{Kind: k, NS: o.Ns, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out
}

func toPBEntry(e *chainsm.Entry) *kvpb.Update {
	return &kvpb.Update{Seq: e.Seq, Ops: toPBOps(e.Ops), ClientId: e.ID.Client, ClientSeq: e.ID.Seq,
		Status: e.Status, WallMs: e.WallMs}
}

func fromPBEntry(u *kvpb.Update) *chainsm.Entry {
	return &chainsm.Entry{Seq: u.Seq, Ops: fromPBOps(u.Ops), ID: chainsm.ReqID{Client: u.ClientId, Seq: u.ClientSeq},
		Status: u.Status, WallMs: u.WallMs}
}

func toPBMsg(m chainsm.Msg) *kvpb.ChainMsg {
	pm := &kvpb.ChainMsg{Kind: uint32(m.Kind), Partition: uint32(m.Part), ChainVersion: m.Ver, Seq: m.Seq,
		Learner: m.Learner, Epoch: m.Epoch, Granted: m.Granted, LeaseNs: m.LeaseNs, ReqToken: m.ReqToken, Hello: m.Hello, Trunc: m.Trunc}
	if len(m.Entries) > 0 {
		pm.Entries = make([]*kvpb.Update, len(m.Entries))
		for i, e := range m.Entries {
			pm.Entries[i] = toPBEntry(e)
		}
	}
	return pm
}

// fromPBMsg converts a received message; snapshots never travel this way.
func fromPBMsg(from string, pm *kvpb.ChainMsg) (chainsm.Msg, bool) {
	k := chainsm.MsgKind(pm.Kind)
	if k == 0 || k == chainsm.MsgSnapshot || k > chainsm.LastMsgKind {
		return chainsm.Msg{}, false
	}
	m := chainsm.Msg{Kind: k, From: from, Part: int(pm.Partition), Ver: pm.ChainVersion, Seq: pm.Seq,
		Learner: pm.Learner, Epoch: pm.Epoch, Granted: pm.Granted, LeaseNs: pm.LeaseNs, ReqToken: pm.ReqToken, Hello: pm.Hello, Trunc: pm.Trunc}
	if len(pm.Entries) > 0 {
		m.Entries = make([]*chainsm.Entry, len(pm.Entries))
		for i, u := range pm.Entries {
			m.Entries[i] = fromPBEntry(u)
		}
	}
	return m, true
}

func toPBDedup(ds []chainsm.DedupRecord) []*kvpb.DedupRecord {
	out := make([]*kvpb.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = &kvpb.DedupRecord{ClientId: d.ID.Client, ClientSeq: d.ID.Seq, Seq: d.Seq, Status: d.Status, WallMs: d.WallMs, Sum: d.Sum}
	}
	return out
}

func fromPBDedup(ds []*kvpb.DedupRecord) []chainsm.DedupRecord {
	out := make([]chainsm.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = chainsm.DedupRecord{ID: chainsm.ReqID{Client: d.ClientId, Seq: d.ClientSeq}, Seq: d.Seq, Status: d.Status, WallMs: d.WallMs, Sum: d.Sum}
	}
	return out
}
