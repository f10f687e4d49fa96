package kvserver

import (
	"fmt"

	"github.com/ecskv/ecskv/common/kvpb"
	"github.com/ecskv/ecskv/kvserver/chainsm"
	"github.com/ecskv/ecskv/kvserver/storage"
)

// Wire conversions of the chain protocol's messages (kvserver/chainsm) to
// the Replication service's protobuf and back.

// toPBOps converts replicated ops: puts, deletes and OpNone, as a head
// resolved them. An op left unresolved (its head's storage failed, and the
// server stops) gets a kind no receiver accepts, so the message is dropped.
func toPBOps(ops []storage.Op) []*kvpb.Op {
	out := make([]*kvpb.Op, len(ops))
	for i, o := range ops {
		k, err := storage.PBOpKind(o.Kind)
		if err != nil {
			k = unresolvedOpKind
		}
		out[i] = &kvpb.Op{Kind: k, Ns: o.NS, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out
}

// unresolvedOpKind is no kvpb.OpKind.
const unresolvedOpKind kvpb.OpKind = -1

// fromPBOps converts received ops; an unknown kind fails the message.
func fromPBOps(ops []*kvpb.Op) ([]storage.Op, error) {
	out := make([]storage.Op, len(ops))
	for i, o := range ops {
		k, err := storage.FromPBOpKind(o.Kind)
		if err != nil {
			return nil, err
		}
		out[i] = storage.Op{Kind: k, NS: o.Ns, Key: o.Key, Value: o.Value, ExpiryMs: o.ExpiryMs}
	}
	return out, nil
}

func toPBEntry(e *chainsm.Entry) *kvpb.Update {
	return &kvpb.Update{Seq: e.Seq, Ops: toPBOps(e.Ops), ClientId: e.ID.Client, ClientSeq: e.ID.Seq,
		Status: e.Status, WallMs: e.WallMs, Sum: e.Sum,
		ResultVersion: e.Res.Version, ResultValue: e.Res.Value, ResultExisted: e.Res.Existed}
}

func fromPBEntry(u *kvpb.Update) (*chainsm.Entry, error) {
	ops, err := fromPBOps(u.Ops)
	if err != nil {
		return nil, fmt.Errorf("update %d: %w", u.Seq, err)
	}
	return &chainsm.Entry{Seq: u.Seq, Ops: ops, ID: chainsm.ReqID{Client: u.ClientId, Seq: u.ClientSeq},
		Status: u.Status, WallMs: u.WallMs, Sum: u.Sum,
		Res: storage.Result{Version: u.ResultVersion, Value: u.ResultValue, Existed: u.ResultExisted}}, nil
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
			e, err := fromPBEntry(u)
			if err != nil {
				return chainsm.Msg{}, false // a sender newer than this server: dropped like a bad kind
			}
			m.Entries[i] = e
		}
	}
	return m, true
}

func toPBDedup(ds []chainsm.DedupRecord) []*kvpb.DedupRecord {
	out := make([]*kvpb.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = &kvpb.DedupRecord{ClientId: d.ID.Client, ClientSeq: d.ID.Seq, Seq: d.Seq, Status: d.Status, WallMs: d.WallMs, Sum: d.Sum,
			ResultVersion: d.Res.Version, ResultValue: d.Res.Value, ResultExisted: d.Res.Existed}
	}
	return out
}

func fromPBDedup(ds []*kvpb.DedupRecord) []chainsm.DedupRecord {
	out := make([]chainsm.DedupRecord, len(ds))
	for i, d := range ds {
		out[i] = chainsm.DedupRecord{ID: chainsm.ReqID{Client: d.ClientId, Seq: d.ClientSeq}, Seq: d.Seq, Status: d.Status, WallMs: d.WallMs, Sum: d.Sum,
			Res: storage.Result{Version: d.ResultVersion, Value: d.ResultValue, Existed: d.ResultExisted}}
	}
	return out
}
